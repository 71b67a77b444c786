"""Things: read, update with optimistic concurrency, archive, soft-delete, restore and query
(creating is service_create.py). No SQL here (see repository.py) and no bus calls: the handlers (app.py) take
and give back the quota units of the things added or removed, outside the transaction these
functions run in.

RBAC is enforced on every call from the envelope's auth context (`shared.kernel.rbac.require`), and it
fails closed: a context that carries no permissions may do nothing. Tenancy stamps role and
permissions on every verified key, so real callers always carry them.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from services.graph import access, keys, repository as repo
from services.graph.properties import (
    SECRET_KEYS,
    keep_masked_secrets,
    mask_secrets,
    properties_model,
)
from services.graph.rows import ThingRow
from services.graph.service_type_schemas import check_properties
from shared.contracts.graph import (
    InvalidProperties,
    InvalidTransition,
    Thing,
    ThingNotFound,
    ThingQuery,
    Things,
    ThingUpdate,
    UnknownType,
    VersionConflict,
)
from shared.kernel.errors import InvalidRequest
from shared.kernel.ontology import (
    GRANULAR_THINGS,
    THING_CATEGORIES,
    EventType,
    ThingStatus,
    ThingType,
    UnknownOntologyType,
    can_transition,
    canonical_thing,
)
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_UPDATED_EVENTS: dict[ThingType, EventType] = {ThingType.AI_CLONE: EventType.CLONE_UPDATED}


def thing_data(row: ThingRow) -> dict[str, Any]:
    """The reply form of a row as plain data (secrets masked): the fields of `Thing`, for a reply encoded straight
    from rows (`Encoded.plain`: a batch of 500 skips 500 models' validation and serialisation)."""
    return {
        "id": row.id, "type": row.type, "name": row.name, "properties": mask_secrets(row.properties),
        "status": row.status, "version": row.version, "created_at": row.created_at, "updated_at": row.updated_at,
        "deleted_at": row.deleted_at,
    }


def to_thing(row: ThingRow) -> Thing:
    """The reply form of a row: secrets masked."""
    return Thing(**thing_data(row))


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
    """The thing type a name stands for and the properties its variant folds in (`intent_mandate`)."""
    known = _RESOLVED.get(name)
    if known is None:
        try:
            canonical = canonical_thing(name)
        except UnknownOntologyType as error:
            raise UnknownType(str(error), {"type": name}) from None
        known = canonical.type, canonical.metadata
    return known[0], dict(known[1])


_RESOLVED = {name: (canonical.type, canonical.metadata) for name, canonical in
             ((name, canonical_thing(name)) for name in [*(t.value for t in ThingType), *GRANULAR_THINGS])}
"""Every name `canonical_thing` knows, resolved once: a batch resolves one per thing."""


async def _live(ctx: WorkContext, thing_id: UUID, *, for_update: bool = True) -> ThingRow:
    row = await repo.get_thing(ctx.session, ctx.auth.org_id, thing_id, for_update=for_update)
    if row is None or row.deleted_at is not None:
        raise ThingNotFound(f"no thing {thing_id} in this organization", {"id": str(thing_id)})
    return row


async def get_thing(ctx: WorkContext, thing_id: UUID) -> Thing:
    require(ctx.auth, "things", "read")
    return await access.visible_thing(ctx, to_thing(await _live(ctx, thing_id, for_update=False)))


def _merge(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in keep_masked_secrets(patch, old).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def update_thing(ctx: WorkContext, request: ThingUpdate) -> Thing:
    require(ctx.auth, "things", "update")
    row = await _live(ctx, request.id)
    await access.visible_thing(ctx, to_thing(row))  # a thing out of the caller's scope is as missing
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
        patch = await access.keep_masked(ctx, row.type, request.properties)  # "***" sent back changes nothing
        properties = validate_properties(ThingType(row.type), _merge(row.properties, patch))
        await check_properties(ctx, row.type, properties)
        properties = await keys.seal_update(ctx, row, properties)
        if properties != row.properties:
            values["properties"] = properties
            changed = {k for k in properties.keys() | row.properties.keys() if properties.get(k) != row.properties.get(k)}
            changes["properties"] = sorted(changed)
    if not values:
        return await access.masked(ctx, to_thing(row))
    updated = await repo.update_thing(ctx.session, ctx.auth.org_id, row.id, values, row.version)
    event = EventType.ENTITY_ARCHIVED if values.get("status") == ThingStatus.ARCHIVED else _UPDATED_EVENTS.get(
        ThingType(row.type), EventType.ENTITY_UPDATED)
    await ctx.emit(event, target_id=row.id, target_type=row.type,
                   metadata={"entityType": row.type, "changes": changes, "version": updated.version})
    return await access.masked(ctx, to_thing(updated))


def _check_transition(row: ThingRow, new: ThingStatus) -> None:
    if not can_transition(ThingStatus(row.status), new):
        raise InvalidTransition(
            f"a {row.status} thing cannot become {new.value}", {"from": row.status, "to": new.value}
        )


async def archive_thing(ctx: WorkContext, thing_id: UUID) -> Thing:
    return await update_thing(ctx, ThingUpdate(id=thing_id, status=ThingStatus.ARCHIVED))


async def delete_thing(ctx: WorkContext, thing_id: UUID) -> Thing:
    """Soft delete: the row stays (restorable, and its history keeps a target) but no query shows it.
    The handler gives the thing's quota unit back once this has committed."""
    require(ctx.auth, "things", "delete")
    row = await _live(ctx, thing_id)
    await access.visible_thing(ctx, to_thing(row))
    updated = await repo.update_thing(ctx.session, ctx.auth.org_id, row.id, {"deleted_at": repo.NOW}, row.version)
    await ctx.emit(EventType.ENTITY_DELETED, target_id=row.id, target_type=row.type,
                   metadata={"entityType": row.type, "version": updated.version})
    return await access.masked(ctx, to_thing(updated))


async def _any(ctx: WorkContext, thing_id: UUID, *, for_update: bool) -> ThingRow:
    """The thing, deleted or not."""
    row = await repo.get_thing(ctx.session, ctx.auth.org_id, thing_id, for_update=for_update)
    if row is None:
        raise ThingNotFound(f"no thing {thing_id} in this organization", {"id": str(thing_id)})
    return row


async def thing_to_restore(ctx: WorkContext, thing_id: UUID) -> Thing:
    """The thing a restore is asked for, read before its quota unit is taken: a live one needs none."""
    require(ctx.auth, "things", "update")
    return to_thing(await _any(ctx, thing_id, for_update=False))


@dataclass(slots=True)
class Restoration:
    """A restore's reply, and whether it brought the thing back (a concurrent restore may have done it first)."""

    thing: Thing
    restored: bool


async def restore_thing(ctx: WorkContext, thing_id: UUID) -> Restoration:
    require(ctx.auth, "things", "update")
    row = await _any(ctx, thing_id, for_update=True)
    if row.deleted_at is None:
        return Restoration(to_thing(row), restored=False)
    updated = await repo.update_thing(ctx.session, ctx.auth.org_id, row.id, {"deleted_at": None}, row.version)
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=row.type,
                   metadata={"entityType": row.type, "changes": {"deleted": False}, "version": updated.version})
    return Restoration(to_thing(updated), restored=True)


async def query_things(ctx: WorkContext, query: ThingQuery) -> Things:
    require(ctx.auth, "things", "list")
    type_name = resolve_type(query.type)[0].value if query.type else None
    for condition in query.where:
        if SECRET_KEYS & set(condition.path.split(".")):
            raise InvalidRequest("properties holding secrets cannot be filtered on", {"path": condition.path})
    view = await access.view_of(ctx)
    if view is not None:
        access.check_filters(view, type_name, [c.path for c in query.where])
    rows = await repo.query_things(
        ctx.session, ctx.auth.org_id, type_=type_name, status=query.status.value if query.status else None,
        text=query.text, where=[(c.path, c.op, c.value) for c in query.where],
        include_deleted=query.include_deleted, cursor=query.cursor, limit=query.limit,
        visible=view.scope("things") if view else None,
    )
    page = rows[: query.limit]
    things = access.mask_all(view, [to_thing(r) for r in page])
    return Things(things=things, next_cursor=page[-1].id if len(rows) > query.limit else None)
