"""The paid routes: `/x402/{org}/...`, no API key, one priced resource each (README "x402").

`{org}` is the seller's slug (or id). The body is validated before anything is asked or paid (a bad
one is 422, free); then the price (404 `price_not_found` when the org sells nothing there), then x402.
"""

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import Field
from starlette.responses import Response

from services.gateway.problems import Problem, error_responses
from services.gateway.settings import GatewaySettings
from services.gateway.x402 import routes_chain, routes_prices, routes_wallet
from services.gateway.x402.facilitator import SupportedCache
from services.gateway.x402.paywall import Paywall
from services.gateway.x402.prices import PriceCache
from services.gateway.x402.resources import (
    AGENT_CHAT,
    KNOWLEDGE_SEARCH,
    PRODUCT_CONTENT,
    PaidAnswer,
    ProductContent,
    Sold,
)
from shared.contracts.agents.messages import MessageText
from shared.contracts.commerce.x402 import OrgRef
from shared.contracts.knowledge import SearchQuery, SearchResult
from shared.kernel.envelope import Payload

SUPPORTED_TTL = 60.0
"""Seconds the facilitator's kinds (networks and schemes it settles) are kept: they change with a deploy."""

router = APIRouter(prefix="/x402/{org}", tags=["x402"])
PAID = {402: {"model": Problem, "description": "Payment required or refused: base64 `PAYMENT-REQUIRED` says how "
              "to pay, the problem's `detail` why not."}, **error_responses(404, 422, 503)}
Org = Annotated[OrgRef, Path(description="The selling org's slug (or id).")]
AgentSlug = Annotated[str, Path(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")]


class PaidChat(Payload):
    """A paid chat is a new conversation of the seller's agent: a payer names no thread of the seller's."""

    message: MessageText = Field(description="What to ask the agent.")


async def _sell(request: Request, org: str, resource: str, sold: Sold, **args: object) -> Response:
    price = await request.app.state.x402.prices.get(org, resource)
    return await Paywall(request, price, sold, args).sell()


@router.post("/knowledge/search", responses={200: {"model": SearchResult}, **PAID})
async def paid_search(request: Request, org: Org, body: SearchQuery) -> Response:
    """A knowledge search of the seller's org, paid per request."""
    return await _sell(request, org, "knowledge/search", KNOWLEDGE_SEARCH, body=body.model_dump(mode="json"))


@router.post("/agents/{slug}/chat", responses={200: {"model": PaidAnswer}, **PAID})
async def paid_chat(request: Request, org: Org, slug: AgentSlug, body: PaidChat) -> Response:
    """One answer of the seller's agent, paid per message."""
    return await _sell(request, org, f"agents/{slug}/chat", AGENT_CHAT, slug=slug, body=body.model_dump(mode="json"))


@router.get("/products/{id}/content", responses={200: {"model": ProductContent}, **PAID})
async def paid_content(request: Request, org: Org, id: UUID) -> Response:
    """A digital product's content, paid per download."""
    return await _sell(request, org, f"products/{id}/content", PRODUCT_CONTENT, id=str(id))


@dataclass(frozen=True, slots=True)
class X402Edge:
    """What the paid routes keep between requests at this replica: prices and the facilitator's kinds."""

    prices: PriceCache
    supported: SupportedCache


def install(app: FastAPI, settings: GatewaySettings) -> None:
    """The paid routes on the app, with their caches on the app's bus (`app.state.bus`)."""
    app.state.x402 = X402Edge(PriceCache(app.state.bus, settings.gateway_x402_price_ttl),
                              SupportedCache(app.state.bus, SUPPORTED_TTL))
    app.include_router(router)
    app.include_router(routes_prices.router)
    app.include_router(routes_chain.router)
    app.include_router(routes_wallet.router)
