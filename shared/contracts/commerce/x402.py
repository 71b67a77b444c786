"""x402 prices: what an org charges for a resource it serves over the gateway, and the payment requests it makes.

An org prices a **route** it sells under `/x402/{org slug}/`, named by its path there: either a route
template of `PRICEABLE_ROUTES` (`v1/things/{id}`: every thing, at one price) or one concrete path of such
a route (`v1/things/0190...`, `agents/helper/chat`: that one, winning over its template's price). The
allow-list is explicit and holds reads only (and a paid chat): a payer buys what the org chose to sell,
never a write. A price is an x402 `exact` payment: an integer amount of atomic units of an ERC-20 asset
(EIP-3009) on a CAIP-2 network, paid to `pay_to`, within `max_timeout_seconds`. Prices live in commerce
and change without a deploy; the gateway asks `commerce.x402.prices.resolve` (no key: the payer is a
wallet, not a member) and keeps the answer a few seconds (`ONE_GATEWAY_X402_PRICE_TTL`).
"""

import re
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import NotFound


class PriceableRoute(NamedTuple):
    """A route an org may sell under `/x402/{org}/`: its method, its path template there, and what it serves."""

    method: str
    template: str
    serves: str


PRICEABLE_ROUTES: tuple[PriceableRoute, ...] = (
    PriceableRoute("POST", "knowledge/search", "a semantic search of the org's knowledge"),
    PriceableRoute("POST", "agents/{slug}/chat", "one answer of an agent (a new conversation; SSE when asked)"),
    PriceableRoute("GET", "products/{id}/content", "a digital_product's `properties.content`"),
    PriceableRoute("GET", "v1/things", "a page of the org's things, as `GET /v1/things`"),
    PriceableRoute("GET", "v1/things/{id}", "a thing, as `GET /v1/things/{id}`"),
    PriceableRoute("GET", "v1/things/{id}/neighbors", "a thing's neighbors, as `GET /v1/things/{id}/neighbors`"),
    PriceableRoute("GET", "v1/things/{id}/knowledge", "a thing's knowledge, as `GET /v1/things/{id}/knowledge`"),
    PriceableRoute("GET", "v1/knowledge/items", "a page of knowledge items, as `GET /v1/knowledge/items`"),
    PriceableRoute("GET", "v1/knowledge/items/{id}", "a knowledge item, as `GET /v1/knowledge/items/{id}`"),
    PriceableRoute("POST", "v1/knowledge/search", "a semantic search, as `POST /v1/knowledge/search`"),
    PriceableRoute("POST", "v1/knowledge/search/hybrid", "a hybrid search, as `POST /v1/knowledge/search/hybrid`"),
)
"""The allow-list: every route a price may name (the gateway serves each, and checks it serves no other)."""

_PARAMETERS = {"id": "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
               "slug": "[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?"}
"""What a concrete path holds for a template's parameter: an id in lower case, an agent's slug."""


def _concrete(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\{(\w+)\\}", lambda m: f"(?:{_PARAMETERS[m.group(1)]})", re.escape(template)))


_MATCHERS = [(route, _concrete(route.template)) for route in PRICEABLE_ROUTES]


def priceable_route(resource: str) -> PriceableRoute | None:
    """The allow-listed route a resource names: its template itself, or one concrete path of it."""
    for route, concrete in _MATCHERS:
        if resource == route.template or concrete.fullmatch(resource):
            return route
    return None


def _priceable(resource: str) -> str:
    if priceable_route(resource) is None:
        raise ValueError(f"{resource!r} is no route an org may price: one of "
                         f"{', '.join(route.template for route in PRICEABLE_ROUTES)} (or a concrete path of one)")
    return resource


Resource = Annotated[str, StringConstraints(max_length=200), AfterValidator(_priceable)]
"""A priced resource: a template of `PRICEABLE_ROUTES` or a concrete path of one (ids in lower case)."""
Method = Literal["GET", "POST"]
MimeType = Annotated[str, StringConstraints(pattern=r"^[a-z]+/[-+.a-z0-9]+$", max_length=100)]
Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Network = Annotated[str, StringConstraints(pattern=r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9*]{1,32}$")]
"""A CAIP-2 chain id, e.g. `eip155:84532` (Base Sepolia) or the local chain's `eip155:131277322940537`."""
OrgRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$|^[0-9a-f-]{36}$")]
Amount = Annotated[int, Field(gt=0, le=2**63 - 1, description="Atomic units of the asset (6 decimals: 10000 = 0.01).")]


class PriceNotFound(NotFound):
    """Nothing is sold there: the org has no price for the resource (or no such org sells anything)."""

    code = "price_not_found"


class PriceSet(Payload):
    resource: Resource = Field(description="What is sold: a route template of `PRICEABLE_ROUTES` (`v1/things/{id}`) "
                               "or one concrete path of one (`v1/things/<id>`, `agents/<slug>/chat`).")
    method: Method | None = Field(None, description="The route's method; default (and the only one allowed): the "
                                  "allow-listed route's.")
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
    mime_type: MimeType = Field("application/json", description="What the resource answers (shown in the 402).")

    @model_validator(mode="after")
    def _route_method(self) -> "PriceSet":
        route = priceable_route(self.resource)
        if route is not None and self.method not in (None, route.method):
            raise ValueError(f"{self.resource!r} is sold by {route.method}, not {self.method}")
        return self


class PriceTarget(Payload):
    resource: Resource


class PriceQuery(Payload):
    limit: int = Field(100, ge=1, le=1000)


class PriceResolve(Payload):
    org: OrgRef = Field(description="The selling org: its slug (or id), as the paid URL names it.")
    resource: Resource = Field(description="The path asked for (concrete): its own price wins over its route's.")
    route: Resource | None = Field(None, description="The allow-listed template the path matched, priced for all.")


class Price(BaseModel):
    """A price as the org sees it and the gateway sells it."""

    org_id: UUID
    org_slug: str
    resource: str
    method: str
    amount: int
    asset: str
    network: str
    pay_to: str
    asset_name: str
    asset_version: str
    max_timeout_seconds: int
    description: str
    mime_type: str
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
