"""The allow-listed `/v1` reads, sold at `/x402/{org}/v1/...` (docs/x402.md "Any route an org prices").

Each is its `/v1` route again, with the same parameters (the same query models, so the same 422s) and
the same answer, but no API key: it is served once paid, in the seller's org, by the `x402` identity
with the read permission of its message (and the reads it makes besides, `resources.forward`). Only
reads are here, and only these: an org prices a route of this list (or one concrete path of it), and
`routes.install` refuses to start when this list and `PRICEABLE_ROUTES` differ.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from services.gateway.routes_graph import NeighborsQuery, ThingInclude, ThingListQuery, _set, _where
from services.gateway.routes_knowledge import ItemInclude, ThingKnowledgeParams
from services.gateway.x402.paid import PAID, PREFIX, Org, sell
from services.gateway.x402.resources import forward
from shared.contracts.graph import NEIGHBORS, THING_GET, THING_QUERY, Neighbors, Things, ThingWithRelated
from shared.contracts.knowledge import (
    ITEM_GET,
    ITEM_QUERY,
    SEARCH,
    SEARCH_HYBRID,
    THING_KNOWLEDGE,
    HybridQuery,
    ItemQuery,
    Items,
    KnowledgeItem,
    SearchQuery,
    SearchResult,
    ThingKnowledge,
)

router = APIRouter(prefix=PREFIX + "/v1", tags=["x402"])

THING = forward(THING_GET, product_arg="id", also=("connections:read",))
THINGS = forward(THING_QUERY)
THING_NEIGHBORS = forward(NEIGHBORS)
KNOWLEDGE_OF_THING = forward(THING_KNOWLEDGE)
ITEM = forward(ITEM_GET)
ITEMS = forward(ITEM_QUERY)
SEARCHED = forward(SEARCH)
SEARCHED_HYBRID = forward(SEARCH_HYBRID)


@router.get("/things", responses={200: {"model": Things}, **PAID})
async def paid_things(request: Request, org: Org, query: Annotated[ThingListQuery, Query()]) -> Response:  # type: ignore[valid-type]
    """A page of the seller's things, as `GET /v1/things`."""
    payload = _set(query)
    payload["where"] = [_where(clause) for clause in payload.get("where", [])]
    return await sell(request, org, THINGS, payload=payload)


@router.get("/things/{id}", responses={200: {"model": ThingWithRelated}, **PAID})
async def paid_thing(request: Request, org: Org, id: UUID, query: Annotated[ThingInclude, Query()]) -> Response:  # type: ignore[valid-type]
    """A thing of the seller's, as `GET /v1/things/{id}`."""
    return await sell(request, org, THING, id=str(id), payload={"id": str(id), **_set(query)})


@router.get("/things/{id}/neighbors", responses={200: {"model": Neighbors}, **PAID})
async def paid_neighbors(request: Request, org: Org, id: UUID,
                         query: Annotated[NeighborsQuery, Query()]) -> Response:  # type: ignore[valid-type]
    return await sell(request, org, THING_NEIGHBORS, id=str(id), payload={"thing_id": str(id), **_set(query)})


@router.get("/things/{id}/knowledge", responses={200: {"model": ThingKnowledge}, **PAID})
async def paid_thing_knowledge(request: Request, org: Org, id: UUID,
                               query: Annotated[ThingKnowledgeParams, Query()]) -> Response:  # type: ignore[valid-type]
    return await sell(request, org, KNOWLEDGE_OF_THING, id=str(id), payload={"thing_id": str(id), **_set(query)})


@router.get("/knowledge/items", responses={200: {"model": Items}, **PAID})
async def paid_items(request: Request, org: Org, query: Annotated[ItemQuery, Query()]) -> Response:
    return await sell(request, org, ITEMS, payload=_set(query))


@router.get("/knowledge/items/{id}", responses={200: {"model": KnowledgeItem}, **PAID})
async def paid_item(request: Request, org: Org, id: UUID, query: Annotated[ItemInclude, Query()]) -> Response:  # type: ignore[valid-type]
    return await sell(request, org, ITEM, id=str(id), payload={"id": str(id), **_set(query)})


@router.post("/knowledge/search", responses={200: {"model": SearchResult}, **PAID})
async def paid_v1_search(request: Request, org: Org, body: SearchQuery) -> Response:
    return await sell(request, org, SEARCHED, payload=_set(body))


@router.post("/knowledge/search/hybrid", responses={200: {"model": SearchResult}, **PAID})
async def paid_v1_hybrid_search(request: Request, org: Org, body: HybridQuery) -> Response:
    return await sell(request, org, SEARCHED_HYBRID, payload=_set(body))
