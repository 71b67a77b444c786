"""Things: create (idempotent, quota-counted), read, update with optimistic concurrency, archive,
soft-delete, restore and query. No SQL here (see repository.py), no NATS beyond the tenancy calls.

RBAC is enforced on every call from the envelope's auth context (`shared.kernel.rbac.require`), and it
fails closed: a context that carries no permissions may do nothing. Tenancy stamps role and
permissions on every verified key, so real callers always carry them.
"""

import hashlib
import json
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from services.graph import quota
from services.graph import repository as repo
from services.graph.errors import (
    IdempotencyConflict,
    InvalidProperties,
    InvalidTransition,
    ThingNotFound,
    UnknownType,
    VersionConflict,
)
from services.graph.models import Thing
from services.graph.properties import (
    SECRET_KEYS,
    keep_masked_secrets,
    mask_secrets,
    properties_model,
)
from services.graph.schemas import ThingCreate, ThingQuery, Things, ThingUpdate
from shared.kernel.errors import InvalidRequest
from shared.kernel.events import EventPayload
from shared.runtime.handlers import RequestContext
from shared.kernel.ids import uuid7
from shared.kernel.ontology import (
    THING_CATEGORIES,
    EventType,
    ThingStatus,
    ThingType,
    UnknownOntologyType,
    can_transition,
    canonical_thing,
)
from shared.kernel.rbac import require

_CREATED_EVENTS: dict[ThingType, EventType] = {
    ThingType.COURSE: EventType.COURSE_CREATED,
    ThingType.AI_CLONE: EventType.CLONE_CREATED,
    ThingType.TOKEN: EventType.TOKEN_CREATED,
    **{t: EventType.AGENT_CREATED for t in THING_CATEGORIES["business_agents"]},
}
"""Thing types the spec gives a creation event of their own; the rest use `entity_created`."""

_UPDATED_EVENTS: dict[ThingType, EventType] = {ThingType.AI_CLONE: EventType.CLONE_UPDATED}


def to_thing(row: Any) -> Thing:
    """The reply form of a row: secrets masked."""
    return Thing(
        id=row.id, type=row.type, name=row.name, properties=mask_secrets(row.properties), status=row.status,
        version=row.version, created_at=row.created_at, updated_at=row.updated_at, deleted_at=row.deleted_at,
    )


def validate_properties(thing_type: ThingType, properties: dict[str, Any]) -> dict[str, Any]:
    """The properties as stored: checked against the type's structure, defaults filled in."""
    if thing_type in THING_CATEGORIES["business_agents"]:
        expected = thing_type.value.removesuffix("_agent")
        given = properties.get("agentType", expected)
        if given != expected:
            raise InvalidProperties(
                f"properties.agentType of a {thing_type.value} must be {expected!r}",
                {"type": thing_type.value, "errors": [{"loc": ["agentType"], "msg": f"must be {expected!r}"}]},
            )
        properties = {**properties, "agentType": expected}
    try:
        model = properties_model(thing_type).model_validate(properties)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_context=False, include_input=False)
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidProperties(
            f"properties of a {thing_type.value} are invalid: {where}: {first['msg']}",
            {"type": thing_type.value, "errors": errors},
        ) from None
    return model.model_dump(mode="json", exclude_none=True)


def resolve_type(name: str) -> tuple[ThingType, dict[str, Any]]:
    try:
        canonical = canonical_thing(name)
    except UnknownOntologyType as error:
        raise UnknownType(str(error), {"type": name}) from None
    return canonical.type, dict(canonical.metadata)


def _request_hash(thing_type: ThingType, request: ThingCreate, properties: dict[str, Any]) -> str:
    body = json.dumps([thing_type.value, request.name, properties, request.status.value], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _prepare(ctx: RequestContext, request: ThingCreate) -> dict[str, Any]:
    thing_type, folded = resolve_type(request.type)
    properties = validate_properties(thing_type, {**request.properties, **folded})
    if request.status is ThingStatus.ARCHIVED:
        raise InvalidTransition("a thing cannot be created archived")
    return {
        "id": uuid7(), "org_id": ctx.auth.org_id, "type": thing_type.value, "name": request.name,
        "properties": properties, "status": request.status.value, "version": 1,
        "idempotency_key": request.idempotency_key,
        "request_hash": _request_hash(thing_type, request, properties) if request.idempotency_key else None,
    }


async def create_things(ctx: RequestContext, requests: list[ThingCreate]) -> list[Thing]:
    """Create in order. A key seen before returns that thing (and counts nothing); the same key
    for a different request is a conflict. The new things count against the `things` quota."""
    require(ctx.auth, "things", "create")
    prepared = [_prepare(ctx, request) for request in requests]
    keyed = {row["idempotency_key"]: row for row in prepared if row["idempotency_key"]}
    existing = {}
    if keyed:
        existing = {row.idempotency_key: row for row in await repo.things_by_keys(ctx.session, ctx.auth.org_id, list(keyed))}
    results: dict[int, Any] = {}
    new_rows, first_of_key = [], {}
    for index, row in enumerate(prepared):
        key = row["idempotency_key"]
        earlier = existing.get(key) if key else None
        if earlier is None and key in first_of_key:
            earlier = first_of_key[key]
        if earlier is not None:
            if _hash_of(earlier) != row["request_hash"]:
                raise IdempotencyConflict("this idempotency key was used for a different thing", {"idempotency_key": key})
            results[index] = earlier
            continue
        if key:
            first_of_key[key] = row
        new_rows.append((index, row))
    if new_rows:
        await quota.consume(ctx, len(new_rows))
        inserted = {row.id: row for row in await repo.insert_things(ctx.session, [row for _, row in new_rows])}
        lost = [row for _, row in new_rows if row["id"] not in inserted]
        winners: dict[str, Any] = {}
        if lost:  # a concurrent request with the same key won: answer with its thing
            await quota.release(ctx, len(lost))
            winners = {r.idempotency_key: r for r in await repo.things_by_keys(ctx.session, ctx.auth.org_id, [r["idempotency_key"] for r in lost])}
        for index, row in new_rows:
            results[index] = inserted.get(row["id"]) or winners[row["idempotency_key"]]
        await _emit_created(ctx, list(inserted.values()))
    for index, value in list(results.items()):
        if isinstance(value, dict):  # a batch repeating a key: the row created for its first use
            results[index] = results[next(i for i, r in new_rows if r is value)]
    return [to_thing(results[index]) for index in range(len(prepared))]


def _hash_of(earlier: Any) -> str | None:
    """The request hash of a stored row, or of a row prepared earlier in the same batch."""
    return earlier["request_hash"] if isinstance(earlier, dict) else earlier.request_hash


async def _emit_created(ctx: RequestContext, rows: list[Any]) -> None:
    """One event per new thing, staged with one statement however large the batch."""
    await ctx.emit_many(
        [
            (
                _CREATED_EVENTS.get(ThingType(row.type), EventType.ENTITY_CREATED),
                EventPayload(
                    target_id=row.id,
                    target_type=row.type,
                    metadata={"entityType": row.type, "name": row.name, "status": row.status},
                ),
            )
            for row in rows
        ]
    )


async def _live(ctx: RequestContext, thing_id: UUID, *, for_update: bool = True) -> Any:
    row = await repo.get_thing(ctx.session, ctx.auth.org_id, thing_id, for_update=for_update)
    if row is None or row.deleted_at is not None:
        raise ThingNotFound(f"no thing {thing_id} in this organization", {"id": str(thing_id)})
    return row


async def get_thing(ctx: RequestContext, thing_id: UUID) -> Thing:
    require(ctx.auth, "things", "read")
    return to_thing(await _live(ctx, thing_id, for_update=False))


def _merge(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in keep_masked_secrets(patch, old).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def update_thing(ctx: RequestContext, request: ThingUpdate) -> Thing:
    require(ctx.auth, "things", "update")
    row = await _live(ctx, request.id)
    if request.expected_version is not None and request.expected_version != row.version:
        raise VersionConflict(
            f"thing {row.id} is at version {row.version}, not {request.expected_version}",
            {"id": str(row.id), "version": row.version, "expected_version": request.expected_version},
        )
    values: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    if request.name is not None and request.name != row.name:
        values["name"] = changes["name"] = request.name
    if request.status is not None and request.status.value != row.status:
        _check_transition(row, request.status)
        values["status"] = request.status.value
        changes["status"] = {"from": row.status, "to": request.status.value}
    if request.properties is not None:
        properties = validate_properties(ThingType(row.type), _merge(row.properties, request.properties))
        if properties != row.properties:
            values["properties"] = properties
            changed = {k for k in properties.keys() | row.properties.keys() if properties.get(k) != row.properties.get(k)}
            changes["properties"] = sorted(changed)
    if not values:
        return to_thing(row)
    updated = await repo.update_thing(ctx.session, ctx.auth.org_id, row.id, values, row.version)
    event = EventType.ENTITY_ARCHIVED if values.get("status") == ThingStatus.ARCHIVED else _UPDATED_EVENTS.get(
        ThingType(row.type), EventType.ENTITY_UPDATED)
    await ctx.emit(event, target_id=row.id, target_type=row.type,
                   metadata={"entityType": row.type, "changes": changes, "version": updated.version})
    return to_thing(updated)


def _check_transition(row: Any, new: ThingStatus) -> None:
    if not can_transition(ThingStatus(row.status), new):
        raise InvalidTransition(
            f"a {row.status} thing cannot become {new.value}", {"from": row.status, "to": new.value}
        )


async def archive_thing(ctx: RequestContext, thing_id: UUID) -> Thing:
    return await update_thing(ctx, ThingUpdate(id=thing_id, status=ThingStatus.ARCHIVED))


async def delete_thing(ctx: RequestContext, thing_id: UUID) -> Thing:
    """Soft delete: the row stays (restorable, and its history keeps a target) but no query shows it."""
    require(ctx.auth, "things", "delete")
    row = await _live(ctx, thing_id)
    updated = await repo.update_thing(ctx.session, ctx.auth.org_id, row.id, {"deleted_at": repo.NOW}, row.version)
    await quota.release(ctx, 1)
    await ctx.emit(EventType.ENTITY_DELETED, target_id=row.id, target_type=row.type,
                   metadata={"entityType": row.type, "version": updated.version})
    return to_thing(updated)


async def restore_thing(ctx: RequestContext, thing_id: UUID) -> Thing:
    require(ctx.auth, "things", "update")
    row = await repo.get_thing(ctx.session, ctx.auth.org_id, thing_id, for_update=True)
    if row is None:
        raise ThingNotFound(f"no thing {thing_id} in this organization", {"id": str(thing_id)})
    if row.deleted_at is None:
        return to_thing(row)
    await quota.consume(ctx, 1)
    updated = await repo.update_thing(ctx.session, ctx.auth.org_id, row.id, {"deleted_at": None}, row.version)
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=row.type,
                   metadata={"entityType": row.type, "changes": {"deleted": False}, "version": updated.version})
    return to_thing(updated)


async def query_things(ctx: RequestContext, query: ThingQuery) -> Things:
    require(ctx.auth, "things", "list")
    type_name = resolve_type(query.type)[0].value if query.type else None
    for condition in query.where:
        if SECRET_KEYS & set(condition.path.split(".")):
            raise InvalidRequest("properties holding secrets cannot be filtered on", {"path": condition.path})
    rows = await repo.query_things(
        ctx.session, ctx.auth.org_id, type_=type_name, status=query.status.value if query.status else None,
        text=query.text, where=[(c.path, c.op, c.value) for c in query.where],
        include_deleted=query.include_deleted, cursor=query.cursor, limit=query.limit,
    )
    page = rows[: query.limit]
    return Things(things=[to_thing(r) for r in page], next_cursor=page[-1].id if len(rows) > query.limit else None)
