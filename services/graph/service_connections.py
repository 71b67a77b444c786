"""Connections: typed, org-scoped links between live things, with metadata, strength and validity.

Granular names (`communicates_with`, `taught_by`, ...) are stored as their consolidated type,
with the direction swapped where the name points the other way. Types the spec marks
"+ protocol" always carry `metadata.protocol`; when the caller gives none it is the protocol
the request came in on.
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.graph import access, repository as repo
from services.graph.rows import ConnectionRow, ThingRow
from services.graph.service import get_thing, thing_data, to_thing
from shared.contracts.graph import (
    Connection,
    ConnectionCreate,
    ConnectionEnd,
    ConnectionNotFound,
    ConnectionQuery,
    Connections,
    ConnectionUpdate,
    NeighborQuery,
    Neighbors,
    Related,
    SelfLink,
    ThingNotFound,
    ThingWithRelated,
    UnknownType,
)
from shared.kernel.envelope import Encoded
from shared.kernel.errors import Conflict, InvalidRequest
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology import (
    PROTOCOL_CONNECTION_TYPES,
    SELF_LINK_ALLOWED,
    ConnectionType,
    EventType,
    MetadataProtocol,
    UnknownOntologyType,
    canonical_connection,
)
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_RATIO_KEYS = ("revenueShare", "progress")
"""Metadata the spec defines as a fraction (0.0 to 1.0)."""


def to_connection(row: ConnectionRow) -> Connection:
    return Connection(
        id=row.id, from_id=row.from_id, to_id=row.to_id, type=row.type, metadata=row.metadata,
        strength=float(row.strength) if row.strength is not None else None, valid_from=row.valid_from,
        valid_to=row.valid_to, created_at=row.created_at, updated_at=row.updated_at,
    )


def resolve_type(name: str) -> tuple[ConnectionType, dict[str, Any], bool]:
    try:
        canonical = canonical_connection(name)
    except UnknownOntologyType as error:
        raise UnknownType(str(error), {"type": name}) from None
    return canonical.type, dict(canonical.metadata), canonical.inverse


def check_metadata(ctx: WorkContext, connection_type: ConnectionType, metadata: dict[str, Any]) -> dict[str, Any]:
    for key in _RATIO_KEYS:
        value = metadata.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1):
            raise InvalidRequest(f"metadata.{key} must be a number from 0 to 1", {"key": key})
    if connection_type in PROTOCOL_CONNECTION_TYPES:
        metadata = {"protocol": ctx.envelope.protocol.value, **metadata}
        if metadata["protocol"] not in set(MetadataProtocol):
            raise InvalidRequest(
                f"metadata.protocol {metadata['protocol']!r} is not one of {', '.join(sorted(MetadataProtocol))}",
                {"protocol": metadata["protocol"]},
            )
    return metadata


def _check_validity(valid_from: datetime | None, valid_to: datetime | None) -> None:
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise InvalidRequest("validTo is before validFrom", {"valid_from": valid_from.isoformat(), "valid_to": valid_to.isoformat()})


async def create_connection(ctx: WorkContext, request: ConnectionCreate) -> Connection:
    require(ctx.auth, "connections", "create")
    planned = plan_connection(ctx, request.from_id, request.to_id, request.type, request.metadata, request.strength,
                              request.valid_from, request.valid_to)
    return to_connection((await insert_connections(ctx, [planned]))[0])


def plan_connection(ctx: WorkContext, from_id: UUID, to_id: UUID, type_name: str, metadata: dict[str, Any],
                    strength: float | None, valid_from: datetime | None = None,
                    valid_to: datetime | None = None) -> dict[str, Any]:
    """A new connection's row, checked (its type, a self link, its metadata, its validity); no I/O: its ends are
    looked up when it is inserted (`insert_connections`), so a new thing's own links can be planned before it is."""
    connection_type, variant, inverse = resolve_type(type_name)
    if inverse:
        from_id, to_id = to_id, from_id
    if from_id == to_id and connection_type not in SELF_LINK_ALLOWED:
        raise SelfLink(f"a thing cannot be connected to itself by {connection_type.value}", {"id": str(from_id)})
    metadata = check_metadata(ctx, connection_type, {**metadata, **variant})
    _check_validity(valid_from or datetime.now(UTC), valid_to)
    values: dict[str, Any] = {
        "id": uuid7(), "org_id": ctx.auth.org_id, "from_id": from_id, "to_id": to_id, "type": connection_type.value,
        "metadata": metadata, "strength": strength, "valid_to": valid_to,
    }
    if valid_from is not None:
        values["valid_from"] = valid_from
    return values


async def insert_connections(ctx: WorkContext, planned: list[dict[str, Any]]) -> list[ConnectionRow]:
    """Insert planned connections whose ends are live things of this org (one lookup for them all), and stage their
    `entity_created` events."""
    ends = [end for values in planned for end in (values["from_id"], values["to_id"])]
    found = await repo.live_thing_ids(ctx.session, ctx.auth.org_id, list(dict.fromkeys(ends)))
    for end in ends:
        if end not in found:  # also what a thing of another org looks like: nothing leaks
            raise ThingNotFound(f"no thing {end} in this organization", {"id": str(end)})
    rows = [await repo.insert_connection(ctx.session, values) for values in planned]
    await ctx.emit_many([(EventType.ENTITY_CREATED, _connection_event(row, {"fromId": str(row.from_id),
                                                                             "toId": str(row.to_id)}))
                         for row in rows])
    return rows


def _connection_event(row: ConnectionRow, extra: dict[str, Any]) -> EventPayload:
    return EventPayload(target_id=row.id, target_type="connection",
                        metadata={"entityType": "connection", "connectionType": row.type, **extra})


async def emit_connection_event(ctx: WorkContext, event: EventType, row: ConnectionRow, extra: dict[str, Any]) -> None:
    await ctx.emit_many([(event, _connection_event(row, extra))])


async def _existing(ctx: WorkContext, connection_id: UUID) -> ConnectionRow:
    row = await repo.get_connection(ctx.session, ctx.auth.org_id, connection_id)
    if row is None:
        raise ConnectionNotFound(f"no connection {connection_id} in this organization", {"id": str(connection_id)})
    return row


async def update_connection(ctx: WorkContext, request: ConnectionUpdate) -> Connection:
    require(ctx.auth, "connections", "update")
    row = await _existing(ctx, request.id)
    values: dict[str, Any] = {}
    if request.metadata is not None:
        merged = {**row.metadata, **request.metadata}
        merged = {k: v for k, v in merged.items() if v is not None}
        values["metadata"] = check_metadata(ctx, ConnectionType(row.type), merged)
    if request.strength is not None:
        values["strength"] = request.strength
    if not values:
        return to_connection(row)
    updated = await repo.update_connection(ctx.session, ctx.auth.org_id, row.id, values)
    await emit_connection_event(ctx, EventType.ENTITY_UPDATED, updated, {"changes": sorted(values)})
    return to_connection(updated)


async def end_connection(ctx: WorkContext, request: ConnectionEnd) -> Connection:
    """Set validTo: the link stays in history, and "as of" queries after that instant skip it."""
    require(ctx.auth, "connections", "update")
    row = await _existing(ctx, request.id)
    if row.valid_to is not None:
        raise Conflict(f"connection {row.id} has already ended", {"valid_to": row.valid_to.isoformat()})
    valid_to = request.valid_to or datetime.now(UTC)
    _check_validity(row.valid_from, valid_to)
    updated = await repo.update_connection(ctx.session, ctx.auth.org_id, row.id, {"valid_to": valid_to})
    await emit_connection_event(ctx, EventType.ENTITY_UPDATED, updated, {"changes": ["valid_to"], "validTo": valid_to.isoformat()})
    return to_connection(updated)


async def delete_connection(ctx: WorkContext, connection_id: UUID) -> UUID:
    """A hard delete, for links made by mistake; ending a link is `end_connection`."""
    require(ctx.auth, "connections", "delete")
    row = await repo.delete_connection(ctx.session, ctx.auth.org_id, connection_id)
    if row is None:
        raise ConnectionNotFound(f"no connection {connection_id} in this organization", {"id": str(connection_id)})
    await emit_connection_event(ctx, EventType.ENTITY_DELETED, row, {"fromId": str(row.from_id), "toId": str(row.to_id)})
    return row.id


def _type_names(names: list[str]) -> list[str]:
    return sorted({resolve_type(name)[0].value for name in names})


async def query_connections(ctx: WorkContext, query: ConnectionQuery) -> Connections:
    require(ctx.auth, "connections", "read")
    view = await access.view_of(ctx)
    scope = view.scope("live") if view else None
    if scope is not None:  # the thing itself first: out of scope looks like missing
        await get_thing(ctx, query.thing_id)
    rows = await repo.query_connections(
        ctx.session, ctx.auth.org_id, query.thing_id, direction=query.direction, types=_type_names(query.types),
        as_of=query.as_of, cursor=query.cursor, limit=query.limit, visible=scope,
    )
    page = rows[: query.limit]
    return Connections(
        connections=[to_connection(r) for r in page], next_cursor=page[-1].id if len(rows) > query.limit else None
    )


async def get_with_related(ctx: WorkContext, thing_id: UUID, include: list[str]) -> ThingWithRelated:
    """A thing and, per requested connection type, the live things at the other end (the spec's enrichment)."""
    thing = await get_thing(ctx, thing_id)
    if not include:
        return ThingWithRelated(thing=thing)
    require(ctx.auth, "connections", "read")
    view = await access.view_of(ctx)
    pairs = await repo.related_things(ctx.session, ctx.auth.org_id, thing_id, _type_names(include),
                                      visible=view.scope("things") if view else None)
    return ThingWithRelated(thing=thing, related=[
        Related(connection=to_connection(c), thing=access.mask_all(view, [to_thing(t)])[0]) for c, t in pairs
    ])


async def neighbors(ctx: WorkContext, query: NeighborQuery) -> Encoded[Neighbors]:
    """The things within `query.depth` hops, by a walk whose time is bounded (`graph_traversal_timeout_ms`: a
    traversal over a dense graph can explode). A caller whose role has no scope rule walks in one lone statement
    (`graph.neighbors`, one round trip); a scoped one in a transaction whose statement carries its rule. The reply
    is encoded from the rows (`Neighbors` on the caller's side): a model per thing only where the caller's role has
    masks to apply."""
    require(ctx.auth, "things", "read")
    max_depth = ctx.runtime.settings.graph_max_depth
    if query.depth > max_depth:
        raise InvalidRequest(f"depth is at most {max_depth}", {"depth": query.depth, "max": max_depth})
    view = await access.view_before_reading(ctx)
    scope = view.scope("live") if view else None  # out-of-scope things are neither shown nor walked through
    timeout_ms = ctx.runtime.settings.graph_traversal_timeout_ms
    walk = repo.Walk(query.depth, query.direction, _type_names(query.types), query.as_of, query.limit)
    try:
        if scope is None:
            rows = await repo.neighbors_alone(ctx.runtime.db, ctx.auth.org_id, query.thing_id, walk, timeout_ms / 1000)
            _start_found(rows, query.thing_id)
        else:
            async with ctx.transaction(statement_timeout_ms=timeout_ms) as tx:
                rows = await repo.neighbors(tx.session, tx.auth.org_id, query.thing_id, walk, visible=scope)
                _start_found(rows, query.thing_id)
                await access.visible_thing(tx, to_thing(rows[0][0]))  # the start thing in scope, as a get checks
    except (TimeoutError, asyncpg.QueryCanceledError) as error:
        raise InvalidRequest(f"the traversal ran longer than {timeout_ms} ms: ask for fewer hops, types or things",
                             {"reason": "traversal_timeout", "timeout_ms": timeout_ms}) from error
    found = rows[1:]
    if view is None:
        shown: list[Any] = [thing_data(row) for row, _ in found]
    else:
        shown = access.mask_all(view, [to_thing(row) for row, _ in found])
    return Encoded.plain({"neighbors": [{"thing": thing, "depth": depth}
                                        for thing, (_, depth) in zip(shown, found, strict=True)]})


def _start_found(rows: list[tuple[ThingRow, int]], thing_id: UUID) -> None:
    """The walk's first row is its start thing, at depth 0, when it exists and is not deleted."""
    if not rows or rows[0][1] != 0 or rows[0][0].deleted_at is not None:
        raise ThingNotFound(f"no thing {thing_id} in this organization", {"id": str(thing_id)})
