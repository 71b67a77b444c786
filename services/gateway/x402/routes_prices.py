"""The org's x402 prices over HTTP, with its API key: `/v1/x402/prices` (what `one x402 price` sends over `ONE_URL`).

A price is keyed by its resource, so `PUT` sets (or replaces) one; the resource may hold `/` and a
template's braces (`v1/things/{id}`, `agents/helper/chat`), so it is the path's tail on `DELETE`. Which
resources may be priced: `shared.contracts.commerce.x402.PRICEABLE_ROUTES` (docs/x402.md).
"""

from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from shared.contracts.commerce.x402 import (
    X402_PRICE_DELETE,
    X402_PRICE_LIST,
    X402_PRICE_SET,
    Price,
    PriceQuery,
    PriceRemoved,
    Prices,
    PriceSet,
)

router = APIRouter(prefix="/v1/x402", tags=["x402"])


@router.put("/prices", responses=WRITE)
async def set_price(body: PriceSet, caller: Caller, bus: Bus) -> Price:
    """Price a route the org sells at `/x402/{slug}/{resource}` (replacing its price): a route template of the
    allow-list (every path of it) or one concrete path (winning over its template's price)."""
    return await bus.request(X402_PRICE_SET, body, caller)


@router.get("/prices", responses=READ)
async def list_prices(query: Annotated[PriceQuery, Query()], caller: Caller, bus: Bus) -> Prices:
    return await bus.request(X402_PRICE_LIST, query, caller)


@router.delete("/prices/{resource:path}", responses=WRITE)
async def delete_price(resource: str, caller: Caller, bus: Bus) -> PriceRemoved:
    return await bus.request(X402_PRICE_DELETE, {"resource": resource}, caller)
