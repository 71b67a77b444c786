"""The graph's REST routes: things and connections, each a thin mapping to one bus request.

Bodies and query strings are the contract's payload models (`shared.contracts.graph`), replies
its result models, so the OpenAPI document is the bus contract seen over HTTP. The org is the
verified key's (`Caller`): a payload model refuses an `org_id` it does not define, and the graph
finds another org's ids as it finds unknown ones: not found.
"""

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, StringConstraints

from services.gateway.auth import Caller
from services.gateway.problems import error_responses
from services.gateway.shapes import derived
from shared.contracts.graph import (
    CONNECTION_CREATE,
    CONNECTION_DELETE,
    CONNECTION_END,
    CONNECTION_QUERY,
    CONNECTION_UPDATE,
    NEIGHBORS,
    THING_ARCHIVE,
    THING_CREATE,
    THING_CREATE_BATCH,
    THING_DELETE,
    THING_GET,
    THING_QUERY,
    THING_RESTORE,
    THING_UPDATE,
    Connection,
    ConnectionCreate,
    ConnectionEnd,
    ConnectionQuery,
    Connections,
    ConnectionUpdate,
    Deleted,
    NeighborQuery,
    Neighbors,
    Thing,
    ThingCreate,
    ThingCreateBatch,
    ThingGet,
    ThingQuery,
    Things,
    ThingUpdate,
    ThingWithRelated,
)
from shared.runtime.client import BusClient


def _bus(request: Request) -> BusClient:
    return request.app.state.bus


Bus = Annotated[BusClient, Depends(_bus)]

WhereClause = Annotated[str, StringConstraints(pattern=r"^[^:]+:[a-z]+(:.*)?$", max_length=1000)]

ThingPatch = derived(ThingUpdate, "ThingPatch", drop=("id",))
ThingInclude = derived(ThingGet, "ThingInclude", drop=("id",))
NeighborsQuery = derived(NeighborQuery, "NeighborsQuery", drop=("thing_id",))
ConnectionPatch = derived(ConnectionUpdate, "ConnectionPatch", drop=("id",))
ConnectionEnding = derived(ConnectionEnd, "ConnectionEnding", drop=("id",))
ThingListQuery = derived(ThingQuery, "ThingListQuery", where=(list[WhereClause], Field(
    default_factory=list, max_length=10,
    description="Property filters, `path:op:value` (the value JSON, or a plain string): `where=price:gt:10`, "
    "`where=slug:exists`.",
)))

READ = error_responses(401, 403, 404, 422, 429, 503)
WRITE = error_responses(401, 403, 404, 409, 413, 422, 429, 503)

router = APIRouter(prefix="/v1")


@router.post("/things", status_code=201, responses=WRITE, tags=["things"])
async def create_thing(body: ThingCreate, caller: Caller, bus: Bus) -> Thing:
    return await bus.request(THING_CREATE, body, caller)


@router.get("/things/{id}", responses=READ, tags=["things"])
async def get_thing(id: UUID, query: Annotated[ThingInclude, Query()], caller: Caller, bus: Bus) -> ThingWithRelated:
    return await bus.request(THING_GET, {"id": id, **_set(query)}, caller)


@router.patch("/things/{id}", responses=WRITE, tags=["things"])
async def update_thing(id: UUID, body: ThingPatch, caller: Caller, bus: Bus) -> Thing:  # type: ignore[valid-type]
    return await bus.request(THING_UPDATE, {"id": id, **_set(body)}, caller)


@router.delete("/things/{id}", responses=WRITE, tags=["things"])
async def delete_thing(id: UUID, caller: Caller, bus: Bus) -> Thing:
    return await bus.request(THING_DELETE, {"id": id}, caller)


@router.post("/things/batch", status_code=201, responses=WRITE, tags=["things"])
async def create_things(body: ThingCreateBatch, caller: Caller, bus: Bus) -> Things:
    return await bus.request(THING_CREATE_BATCH, body, caller)


@router.post("/things/{id}/archive", responses=WRITE, tags=["things"])
async def archive_thing(id: UUID, caller: Caller, bus: Bus) -> Thing:
    return await bus.request(THING_ARCHIVE, {"id": id}, caller)


@router.get("/things/{id}/neighbors", responses=READ, tags=["things"])
async def neighbors(id: UUID, query: Annotated[NeighborsQuery, Query()], caller: Caller, bus: Bus) -> Neighbors:  # type: ignore[valid-type]
    return await bus.request(NEIGHBORS, {"thing_id": id, **_set(query)}, caller)


@router.post("/things/{id}/restore", responses=WRITE, tags=["things"])
async def restore_thing(id: UUID, caller: Caller, bus: Bus) -> Thing:
    return await bus.request(THING_RESTORE, {"id": id}, caller)


@router.get("/things", responses=READ, tags=["things"])
async def list_things(query: Annotated[ThingListQuery, Query()], caller: Caller, bus: Bus) -> Things:  # type: ignore[valid-type]
    payload = _set(query)
    payload["where"] = [_where(clause) for clause in payload.get("where", [])]
    return await bus.request(THING_QUERY, payload, caller)


@router.post("/connections", status_code=201, responses=WRITE, tags=["connections"])
async def create_connection(body: ConnectionCreate, caller: Caller, bus: Bus) -> Connection:
    return await bus.request(CONNECTION_CREATE, body, caller)


@router.get("/connections", responses=READ, tags=["connections"])
async def list_connections(query: Annotated[ConnectionQuery, Query()], caller: Caller, bus: Bus) -> Connections:
    return await bus.request(CONNECTION_QUERY, query, caller)


@router.patch("/connections/{id}", responses=WRITE, tags=["connections"])
async def update_connection(id: UUID, body: ConnectionPatch, caller: Caller, bus: Bus) -> Connection:  # type: ignore[valid-type]
    return await bus.request(CONNECTION_UPDATE, {"id": id, **_set(body)}, caller)


@router.post("/connections/{id}/end", responses=WRITE, tags=["connections"])
async def end_connection(id: UUID, body: ConnectionEnding, caller: Caller, bus: Bus) -> Connection:  # type: ignore[valid-type]
    return await bus.request(CONNECTION_END, {"id": id, **_set(body)}, caller)


@router.delete("/connections/{id}", responses=WRITE, tags=["connections"])
async def delete_connection(id: UUID, caller: Caller, bus: Bus) -> Deleted:
    return await bus.request(CONNECTION_DELETE, {"id": id}, caller)


def _set(model: Any) -> dict[str, Any]:
    """Only what the caller gave: an unset field stays unset for the service (a PATCH changes only those)."""
    return model.model_dump(mode="json", exclude_unset=True)


def _where(clause: str) -> dict[str, Any]:
    """`path:op[:value]` as a `PropertyFilter` payload; the graph validates it like any other."""
    path, op, *rest = clause.split(":", 2)
    if not rest:
        return {"path": path, "op": op}
    try:
        value = json.loads(rest[0])
    except ValueError:
        value = rest[0]
    return {"path": path, "op": op, "value": value}
