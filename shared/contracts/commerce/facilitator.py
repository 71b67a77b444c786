"""The x402 facilitator on the bus (served by the commerce service), and the local test chain behind it.

The gateway's resource server and the agents' paying client never talk to a chain: they ask
commerce to `verify` and `settle` a payment, carrying x402's own JSON shapes (`PaymentPayload`,
`PaymentRequirements`, `VerifyResponse`, `SettleResponse`, protocol v2, camelCase keys as the
x402 package dumps them with `model_dump(by_alias=True)`). Commerce answers from its configured
facilitator: the built-in local one (an in-process EVM running an EIP-3009 token) or an HTTP
facilitator for a real network, and keeps the replay store, so every gateway replica agrees.
"""

from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import InvalidRequest


class PaymentRefused(InvalidRequest):
    """The payment does not pay for this resource; `details.reason` is x402's invalid/error reason."""

    code = "payment_refused"


class FacilitatorRequest(Payload):
    payment_payload: dict[str, Any] = Field(description="x402 `PaymentPayload` (v2) or v1 payload, as sent by the payer.")
    payment_requirements: dict[str, Any] = Field(description="The `PaymentRequirements` the payload is checked against.")
    resource: dict[str, Any] | None = Field(
        None, description="x402 `ResourceInfo` (url, description, mimeType) of what is sold: recorded with the payment."
    )
    product_id: UUID | None = Field(
        None, description="The merchant's thing that was sold (the `transacted` connection's end); unset: a `product` "
        "thing (protocol x402) found or created for the resource's URL.",
    )


class VerifyResult(BaseModel):
    """x402 `VerifyResponse`: `isValid`, `invalidReason`, `payer`."""

    response: dict[str, Any]


class SettleResult(BaseModel):
    """x402 `SettleResponse`: `success`, `errorReason`, `transaction`, `network`, `payer`."""

    response: dict[str, Any]


class SupportedQuery(Payload):
    pass


class Supported(BaseModel):
    """x402 `SupportedResponse`: the (x402Version, scheme, network) kinds the facilitator settles, and signers."""

    response: dict[str, Any]


class ChainFund(Payload):
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="Any address but the zero address.")
    amount: int = Field(gt=0, lt=2**255, description="Token atomic units minted to the address (local test chain only).")

    @field_validator("address")
    @classmethod
    def _not_zero(cls, address: str) -> str:
        if int(address, 16) == 0:
            raise ValueError("the zero address cannot hold tokens")
        return address


class ChainBalanceQuery(Payload):
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")


class ChainBalance(BaseModel):
    network: str = Field(description="CAIP-2 id of the chain, e.g. `eip155:31337`.")
    asset: str = Field(description="The token contract's address.")
    address: str
    balance: int
    tx_hash: str | None = Field(None, description="The mint's transaction, for `fund`.")


_X402 = (Protocol.X402,)

X402_VERIFY = register_message("x402.verify", subjects.proto("x402", "verify"), FacilitatorRequest, VerifyResult,
                               protocols=_X402, permission="payments:verify")
X402_SETTLE = register_message("x402.settle", subjects.proto("x402", "settle"), FacilitatorRequest, SettleResult,
                               protocols=_X402, permission="payments:settle")
X402_SUPPORTED = register_message("x402.supported", subjects.proto("x402", "supported"), SupportedQuery, Supported,
                                  protocols=_X402, permission="payments:read")
CHAIN_FUND = register_message("commerce.chain.fund", subjects.command("commerce", "chain.fund"), ChainFund,
                              ChainBalance, permission="payments:fund")
CHAIN_BALANCE = register_message("commerce.chain.balance", subjects.command("commerce", "chain.balance"),
                                 ChainBalanceQuery, ChainBalance, permission="payments:read")
