"""x402 fixtures on the session's real stack: the local chain's token, and funded payers with their private keys.

`local_token` is what commerce's facilitator announces (`x402.supported`: the local kind's `extra`);
`payer` is a fresh key funded on that chain through the bus (`commerce.chain.fund`), so its balance
is known; `paying_client(payer, token)` is x402's official client (x402Client + the exact EVM client
scheme + an eth_account signer) allowed to pay with the local token.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402 import x402Client
from x402.mechanisms.evm.exact.client import ExactEvmScheme as ExactEvmClientScheme
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentRequired, PaymentRequirements, ResourceInfo

from shared.contracts.commerce.facilitator import CHAIN_BALANCE, CHAIN_FUND, X402_SUPPORTED
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.runtime.context import service_identity

FUNDED = 10_000_000
"""Atomic units a `payer` starts with (10 tokens of 6 decimals)."""


@dataclass(frozen=True)
class LocalToken:
    network: str
    asset: str
    name: str
    version: str
    decimals: int

    def requirements(self, pay_to: str, amount: int, max_timeout_seconds: int = 300) -> PaymentRequirements:
        """An `exact` price in this token, as a resource server would ask it."""
        return PaymentRequirements(scheme="exact", network=self.network, asset=self.asset, amount=str(amount),
                                   pay_to=pay_to, max_timeout_seconds=max_timeout_seconds,
                                   extra={"name": self.name, "version": self.version})


@dataclass(frozen=True)
class Payer:
    account: LocalAccount
    key: str  # 0x-prefixed hex private key
    address: str
    funded: int


def chain_auth(org_id: UUID | None = None) -> AuthContext:
    """An identity that may fund, read balances and ask what the facilitator supports (no org needed)."""
    return service_identity("tests", org_id or uuid7(), ("payments:fund", "payments:read"))


async def chain_balance(bus: BusClient, address: str) -> int:
    return (await bus.request(CHAIN_BALANCE, {"address": address}, chain_auth())).balance


async def fund(bus: BusClient, address: str, amount: int) -> str:
    """Mint `amount` atomic units to `address` on the local chain; the mint's transaction hash."""
    return (await bus.request(CHAIN_FUND, {"address": address, "amount": amount}, chain_auth())).tx_hash


@pytest.fixture(scope="session")
async def local_token(bus: BusClient) -> LocalToken:
    supported = (await bus.request(X402_SUPPORTED, {}, chain_auth(), protocol=Protocol.X402)).response
    local = [kind for kind in supported["kinds"] if (kind.get("extra") or {}).get("local")]
    assert local, f"commerce announces no local chain: {supported}"
    extra = local[0]["extra"]
    return LocalToken(local[0]["network"], extra["asset"], extra["name"], extra["version"], extra["decimals"])


async def new_payer(bus: BusClient, amount: int = FUNDED) -> Payer:
    account = Account.create()
    await fund(bus, account.address, amount)
    return Payer(account, "0x" + bytes(account.key).hex(), account.address, amount)


@pytest.fixture
async def payer(bus: BusClient, local_token: LocalToken) -> Payer:
    """A fresh key holding `FUNDED` units of the local token."""
    return await new_payer(bus)


def paying_client(payer: Payer, token: LocalToken) -> x402Client:
    """x402's official client paying as `payer`, allowed to spend the local token (not one of x402's defaults)."""
    client = x402Client()
    client.register(token.network, ExactEvmClientScheme(EthAccountSigner(payer.account)))
    client.set_spend_controls({"allowed_assets": [{"network": token.network, "asset": token.asset}]})
    return client


async def signed_payment(payer: Payer, token: LocalToken, requirements: PaymentRequirements,
                         url: str = "https://example.test/paid") -> dict[str, Any]:
    """The v2 `PaymentPayload` x402's client signs for `requirements`, as JSON (camelCase, as it travels)."""
    required = PaymentRequired(x402_version=2, accepts=[requirements], resource=ResourceInfo(url=url))
    payload = await paying_client(payer, token).create_payment_payload(required)
    return payload.model_dump(by_alias=True, exclude_none=True, mode="json")
