"""The paid routes: `/x402/{org}/...`, no API key, one priced resource each (README "x402", docs/x402.md).

`{org}` is the seller's slug (or id). The body is validated before anything is asked or paid (a bad
one is 422, free); then the price (404 `price_not_found` when the org sells nothing there), then x402.
Here: a knowledge search, an agent's answer (JSON, or an AG-UI stream when asked as
`text/event-stream`), a digital product's content; routes_v1.py: the allow-listed `/v1` reads.
`install` checks the routes served are exactly `PRICEABLE_ROUTES`, the allow-list prices may name.
"""

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, FastAPI, Header, Path, Request
from fastapi.routing import APIRoute
from pydantic import Field
from starlette.responses import Response

from services.gateway.routes_agui import AGUI_DOC
from services.gateway.settings import GatewaySettings
from services.gateway.x402 import routes_chain, routes_prices, routes_v1, routes_wallet
from services.gateway.x402.facilitator import SupportedCache
from services.gateway.x402.paid import PAID, PREFIX, Org, sell
from services.gateway.x402.prices import PriceCache
from services.gateway.x402.resources import (
    AGENT_CHAT,
    KNOWLEDGE_SEARCH,
    PRODUCT_CONTENT,
    PaidAnswer,
    ProductContent,
    streamed_chat,
)
from shared.contracts.agents.messages import MessageText
from shared.contracts.commerce.x402 import PRICEABLE_ROUTES
from shared.contracts.knowledge import SearchQuery, SearchResult
from shared.kernel.envelope import Payload

SUPPORTED_TTL = 60.0
"""Seconds the facilitator's kinds (networks and schemes it settles) are kept: they change with a deploy."""

router = APIRouter(prefix=PREFIX, tags=["x402"])
AgentSlug = Annotated[str, Path(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")]


class PaidChat(Payload):
    """A paid chat is a new conversation of the seller's agent: a payer names no thread of the seller's."""

    message: MessageText = Field(description="What to ask the agent.")
    stream: bool = Field(False, description="Stream the run as AG-UI events (as `Accept: text/event-stream` does).")


@router.post("/knowledge/search", responses={200: {"model": SearchResult}, **PAID})
async def paid_search(request: Request, org: Org, body: SearchQuery) -> Response:
    """A knowledge search of the seller's org, paid per request."""
    return await sell(request, org, KNOWLEDGE_SEARCH, body=body.model_dump(mode="json"))


@router.post("/agents/{slug}/chat", responses={200: {"model": PaidAnswer, **AGUI_DOC}, **PAID})
async def paid_chat(request: Request, org: Org, slug: AgentSlug, body: PaidChat,
                    accept: Annotated[str | None, Header(include_in_schema=False)] = None) -> Response:
    """One answer of the seller's agent, paid per message: JSON, or the run as AG-UI events (SSE, paid first)."""
    streamed = body.stream or "text/event-stream" in (accept or "")
    sold = streamed_chat(request) if streamed else AGENT_CHAT
    return await sell(request, org, sold, slug=slug, body=body.model_dump(mode="json", exclude={"stream"}))


@router.get("/products/{id}/content", responses={200: {"model": ProductContent}, **PAID})
async def paid_content(request: Request, org: Org, id: UUID) -> Response:
    """A digital product's content, paid per download."""
    return await sell(request, org, PRODUCT_CONTENT, id=str(id))


@dataclass(frozen=True, slots=True)
class X402Edge:
    """What the paid routes keep between requests at this replica: prices and the facilitator's kinds."""

    prices: PriceCache
    supported: SupportedCache


def served_routes() -> set[tuple[str, str]]:
    """(method, template under `/x402/{org}/`) of every paid route served."""
    routes = [*router.routes, *routes_v1.router.routes]
    return {(method, route.path_format.removeprefix(PREFIX + "/")) for route in routes if isinstance(route, APIRoute)
            for method in route.methods}


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """The paid routes on the app, with their caches on the app's bus (`app.state.bus`); exactly the allow-list."""
    app.state.x402 = X402Edge(PriceCache(app.state.bus, settings.gateway_x402_price_ttl),
                              SupportedCache(app.state.bus, SUPPORTED_TTL))
    app.include_router(router)
    app.include_router(routes_v1.router)
    served, allowed = served_routes(), {(route.method, route.template) for route in PRICEABLE_ROUTES}
    if served != allowed:
        raise RuntimeError(f"x402 paid routes differ from PRICEABLE_ROUTES: {sorted(served ^ allowed)}")
    app.include_router(routes_prices.router)
    app.include_router(routes_chain.router)
    app.include_router(routes_wallet.router)
