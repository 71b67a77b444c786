"""Org wallets: an EVM account per organization whose key never leaves commerce, and what its agents may spend.

An agent pays an x402-priced resource with the official x402 client, whose signer asks commerce to sign
(`WALLET_SIGN`): commerce signs only an EIP-3009 `TransferWithAuthorization` from the org's wallet, only for
the agents service acting for that agent, and only within the agent's budget (per call and per rolling
24 hours, in the asset's atomic units), counted atomically in Postgres. Each signature is a spend; the
payer reports its outcome (`WALLET_RECEIPT`), which records the payer's `payment_event`.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import Forbidden, InvalidRequest

Address = str
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
UINT256_MAX = 2**256 - 1
"""A token amount's range on the chain (`uint256`); 0 is a budget that pays nothing."""


class BudgetExceeded(Forbidden):
    """The payment would take the agent beyond its budget (`details.limit`: `per_call`, `per_day`); nothing signed."""

    code = "budget_exceeded"


class SignatureRefused(InvalidRequest):
    """Commerce signs only an EIP-3009 transfer from the org's wallet on the chain it names; `details.reason`."""

    code = "signature_refused"


class PaymentImpossible(InvalidRequest):
    """The paying client found no way to pay what a resource asks (a scheme, network or asset it cannot pay)."""

    code = "payment_impossible"


class WalletCreate(Payload):
    pass


class WalletQuery(Payload):
    pass


class Wallet(BaseModel):
    org_id: UUID
    address: Address = Field(description="The org's EVM account (checksummed); fund it to let its agents pay.")
    created: bool = Field(False, description="True when this request created it (create is idempotent).")
    created_at: datetime


class BudgetSet(Payload):
    agent_id: UUID = Field(description="The agent (its thing id) whose payments the budget bounds.")
    per_call: int = Field(ge=0, le=UINT256_MAX, description="Most one payment may cost, in the asset's atomic units.")
    per_day: int = Field(ge=0, le=UINT256_MAX, description="Most the agent may spend in any 24 hours, in atomic units.")
    asset: Address | None = Field(None, pattern=ADDRESS_PATTERN,
                                  description="Only this token (contract address); unset = any, in atomic units.")


class BudgetQuery(Payload):
    agent_id: UUID


class Budget(BaseModel):
    agent_id: UUID
    per_call: int
    per_day: int
    asset: Address | None = None
    spent_last_day: int = Field(0, description="Atomic units signed for this agent in the last 24 hours.")
    updated_at: datetime | None = None


class WalletSign(Payload):
    """The EIP-712 typed data x402's exact EVM scheme asks its signer to sign (`ClientEvmSigner.sign_typed_data`)."""

    agent_id: UUID = Field(description="The paying agent: must be who the request acts for.")
    domain: dict[str, Any] = Field(description="EIP-712 domain: name, version, chainId, verifyingContract (the token).")
    primary_type: str = Field(description="Must be `TransferWithAuthorization` (EIP-3009).")
    message: dict[str, Any] = Field(description="from, to, value, validAfter, validBefore, nonce.")
    resource: str | None = Field(None, max_length=2000, description="The URL being paid for: recorded with the spend.")


class Signature(BaseModel):
    spend_id: UUID = Field(description="The spend this signature reserved: report its outcome with `WALLET_RECEIPT`.")
    signature: str = Field(description="65-byte ECDSA signature, 0x-hex.")
    address: Address


class WalletReceipt(Payload):
    spend_id: UUID
    success: bool = Field(description="Whether the resource answered with a successful settlement.")
    transaction: str | None = Field(None, max_length=200, description="The settlement's tx hash (PAYMENT-RESPONSE).")
    network: str | None = Field(None, max_length=100)
    error_reason: str | None = Field(None, max_length=500)
    counterpart_id: UUID | None = Field(None, description="The external thing that was paid, recorded as the target.")


class Spend(BaseModel):
    id: UUID
    agent_id: UUID
    amount: int
    asset: Address
    network: str
    pay_to: Address
    nonce: str
    resource: str | None
    status: str = Field(description="signed (reserved), settled or failed; a failed spend still counts: the "
                                    "signed authorization could be settled until its validBefore.")
    tx_hash: str | None
    created_at: datetime


WALLET_CREATE = register_message("commerce.wallet.create", subjects.command("commerce", "wallet.create"),
                                 WalletCreate, Wallet, permission="wallets:create")
WALLET_GET = register_message("commerce.wallet.get", subjects.command("commerce", "wallet.get"), WalletQuery, Wallet,
                              protocols=(Protocol.NATIVE, Protocol.X402), permission="wallets:read")
BUDGET_SET = register_message("commerce.wallet.budget.set", subjects.command("commerce", "wallet.budget.set"),
                              BudgetSet, Budget, permission="wallets:update")
BUDGET_GET = register_message("commerce.wallet.budget.get", subjects.command("commerce", "wallet.budget.get"),
                              BudgetQuery, Budget, permission="wallets:read")
WALLET_SIGN = register_message("commerce.wallet.sign", subjects.command("commerce", "wallet.sign"), WalletSign,
                               Signature, protocols=(Protocol.X402,), permission="wallets:sign")
WALLET_RECEIPT = register_message("commerce.wallet.receipt", subjects.command("commerce", "wallet.receipt"),
                                  WalletReceipt, Spend, protocols=(Protocol.X402,), permission="wallets:sign")
