"""x402 prices: what an org charges for a resource it serves over the gateway, and the payment requests it makes.

An org prices a **resource** of its own, named by the path it is sold under after `/x402/{org slug}/`:
`knowledge/search`, `agents/{agent slug}/chat`, `products/{digital_product id}/content`. A price is an
x402 `exact` payment: an integer amount of atomic units of an ERC-20 asset (EIP-3009) on a CAIP-2
network, paid to `pay_to`, within `max_timeout_seconds`. Prices live in commerce and change without a
deploy; the gateway asks `commerce.x402.prices.resolve` (no key: the payer is a wallet, not a member)
and keeps the answer a few seconds (`ONE_GATEWAY_X402_PRICE_TTL`).
"""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import NotFound

RESOURCE_PATTERN = (
    r"^(knowledge/search"
    r"|agents/[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?/chat"
    r"|products/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/content)$"
)
Resource = Annotated[str, StringConstraints(pattern=RESOURCE_PATTERN)]
"""A priced resource: `knowledge/search`, `agents/{slug}/chat` or `products/{id}/content` (lower-case id)."""
Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Network = Annotated[str, StringConstraints(pattern=r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9*]{1,32}$")]
"""A CAIP-2 chain id, e.g. `eip155:84532` (Base Sepolia) or the local chain's `eip155:131277322940537`."""
OrgRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$|^[0-9a-f-]{36}$")]
Amount = Annotated[int, Field(gt=0, le=2**63 - 1, description="Atomic units of the asset (6 decimals: 10000 = 0.01).")]


class PriceNotFound(NotFound):
    """Nothing is sold there: the org has no price for the resource (or no such org sells anything)."""

    code = "price_not_found"


class PriceSet(Payload):
    resource: Resource
    amount: Amount
    pay_to: Address = Field(description="Who is paid: the org's receiving address.")
    network: Network | None = Field(None, description="Default: the facilitator's network (the local chain in dev).")
    asset: Address | None = Field(None, description="The token contract; default: the facilitator's token.")
    asset_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="The token's EIP-712 domain name (the payer signs with it); default: the facilitator's.")
    asset_version: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = Field(
        None, description="The token's EIP-712 domain version; default: the facilitator's.")
    max_timeout_seconds: int = Field(300, ge=10, le=86_400, description="How long a signed payment stays valid.")
    description: Annotated[str, StringConstraints(max_length=500)] = ""


class PriceTarget(Payload):
    resource: Resource


class PriceQuery(Payload):
    limit: int = Field(100, ge=1, le=1000)


class PriceResolve(Payload):
    org: OrgRef = Field(description="The selling org: its slug (or id), as the paid URL names it.")
    resource: Resource


class Price(BaseModel):
    """A price as the org sees it and the gateway sells it."""

    org_id: UUID
    org_slug: str
    resource: str
    amount: int
    asset: str
    network: str
    pay_to: str
    asset_name: str
    asset_version: str
    max_timeout_seconds: int
    description: str
    updated_at: datetime

    def requirement_extra(self) -> dict[str, Any]:
        """x402 `PaymentRequirements.extra` for the exact EVM scheme: the EIP-712 domain the payer signs in."""
        return {"name": self.asset_name, "version": self.asset_version}


class Prices(BaseModel):
    prices: list[Price]


class PriceRemoved(BaseModel):
    resource: str
    deleted: bool


class PaymentRequested(Payload):
    """A 402 answered for a priced resource: recorded as a `payment_event` (`status: requested`)."""

    resource: Resource
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    amount: Amount
    asset: Address
    network: Network
    pay_to: Address
    reason: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        None, description="Why a payment sent was refused (x402's invalid reason); none for a first, unpaid request.")


class Recorded(BaseModel):
    event_id: UUID


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel], **options: Any) -> Any:
    return register_message(type_, subjects.command("commerce", verb), payload, result, **options)


X402_PRICE_SET = _message("commerce.x402.prices.set", "x402.prices.set", PriceSet, Price, permission="prices:update")
X402_PRICE_LIST = _message("commerce.x402.prices.list", "x402.prices.list", PriceQuery, Prices,
                           permission="prices:list")
X402_PRICE_DELETE = _message("commerce.x402.prices.delete", "x402.prices.delete", PriceTarget, PriceRemoved,
                             permission="prices:delete")
X402_PRICE_RESOLVE = _message("commerce.x402.prices.resolve", "x402.prices.resolve", PriceResolve, Price,
                              requires_auth=False, protocols=(Protocol.X402, Protocol.NATIVE))
X402_REQUESTED = _message("commerce.x402.requested", "x402.requested", PaymentRequested, Recorded,
                          protocols=(Protocol.X402,), permission="payments:request")
