"""Org thing-type property schemas: set, remove and list them, and hold things to them.

A pack (or a plugin) gives an ontology type a JSON Schema in one org; every create and update of
a thing of that type there must satisfy it, after the spec's own structure for the type filled in
its defaults. The check reads the org's schemas from the replica's cache of its rules (access.py:
loaded with the field masks and scope rules, so a create costs no read of its own); a set or a
removal drops them on every replica before it answers, so a schema set a moment ago holds
everywhere from then on. No SQL here (repository_type_schemas.py), no bus calls.
"""

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from services.graph import access, repository_type_schemas as repo
from services.graph.properties import SECRET_KEYS
from services.graph.repository_type_schemas import TypeSchemaRow
from services.graph.rows import NewThing
from shared.contracts.graph import InvalidProperties, UnknownType
from shared.contracts.graph.schemas import (
    TypeSchema,
    TypeSchemaOwned,
    TypeSchemaRemoval,
    TypeSchemaRemove,
    TypeSchemas,
    TypeSchemaSaved,
    TypeSchemaSet,
)
from shared.kernel.errors import InvalidRequest
from shared.kernel.ontology import EventType, is_thing_type
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

MAX_SCHEMA_BYTES = 64_000


def type_schema_id(org_id: UUID, thing_type: str) -> UUID:
    """The `target_id` of a type schema's events: stable per org and type."""
    return uuid5(org_id, f"type_schema:{thing_type}")


def _reply(row: TypeSchemaRow) -> TypeSchema:
    return TypeSchema(type=row.thing_type, properties_schema=row.properties_schema, source=row.source,
                      description=row.description, version=row.version, created_at=row.created_at,
                      updated_at=row.updated_at)


def _checked_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema an org may store: valid JSON Schema 2020-12, describing an object, of a sane size."""
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise InvalidRequest(f"a properties schema may hold at most {MAX_SCHEMA_BYTES} bytes of JSON")
    if schema.get("type", "object") != "object":
        raise InvalidRequest("a properties schema describes an object: its `type` must be \"object\"")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise InvalidRequest(f"not a valid JSON Schema: {error.message}", {"path": list(error.path)}) from None
    _check_references(schema)
    return schema


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [v for k, v in value.items() if k in ("$ref", "$dynamicRef") and isinstance(v, str)]
        return own + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def _check_references(schema: dict[str, Any]) -> None:
    """Only references within the schema itself, each one resolvable: nothing is fetched, no check fails later."""
    resolver = Registry().with_resource(_BASE, DRAFT202012.create_resource(schema)).resolver(base_uri=_BASE)
    for reference in _references(schema):
        if not reference.startswith("#"):
            raise InvalidRequest("a properties schema may only reference its own parts (`#/$defs/...`)",
                                 {"ref": reference})
        try:
            resolver.lookup(reference)
        except Unresolvable:
            raise InvalidRequest(f"the reference {reference} points at nothing in the schema", {"ref": reference}) from None


_BASE = "urn:one:type-schema"


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator:
    """Compiled once per distinct schema: checking a batch of things costs the validation alone."""
    return Draft202012Validator(json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _check(row: TypeSchemaRow, properties: dict[str, Any]) -> None:
    validator = _validator(json.dumps(row.properties_schema, sort_keys=True))
    try:
        error = next(iter(sorted(validator.iter_errors(properties), key=lambda e: list(e.absolute_path))), None)
    except Unresolvable:  # a schema stored before its references were checked: the org's to fix, never a 5xx
        raise InvalidRequest(f"this organization's {row.thing_type} schema ({row.source}) cannot be resolved",
                             {"type": row.thing_type, "source": row.source}) from None
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "(root)"
        secret = bool(SECRET_KEYS & {str(part) for part in error.absolute_path})
        message = f"does not satisfy `{error.validator}`" if secret else error.message  # a message quotes the value
        raise InvalidProperties(
            f"properties of a {row.thing_type} violate this organization's schema ({row.source}): {where}: {message}",
            {"type": row.thing_type, "source": row.source, "errors": [{"loc": list(error.absolute_path), "msg": message}]},
        )


async def check_new_things(ctx: WorkContext, new: Sequence[NewThing]) -> None:
    """Refuse the batch if any new thing violates its type's schema in this org."""
    if not new:
        return
    schemas = await _schemas(ctx)
    for thing in new:
        if thing.type in schemas:
            _check(schemas[thing.type], thing.properties)


async def check_properties(ctx: WorkContext, thing_type: str, properties: dict[str, Any]) -> None:
    """An update's merged properties against the type's schema in this org, if it has one."""
    row = (await _schemas(ctx)).get(thing_type)
    if row is not None:
        _check(row, properties)


async def _schemas(ctx: WorkContext) -> dict[str, TypeSchemaRow]:
    return (await access.cache_of(ctx.runtime).rules(ctx, ctx.auth.org_id)).type_schemas


async def set_type_schema(ctx: WorkContext, request: TypeSchemaSet) -> TypeSchemaSaved:
    """Create, or (same source, different schema) replace; the same schema again changes nothing."""
    require(ctx.auth, "type_schemas", "update")
    thing_type = _thing_type(request.type)
    schema = _checked_schema(request.properties_schema)
    org_id = ctx.auth.org_id
    values = {"properties_schema": schema, "source": request.source, "description": request.description}
    existing = await repo.get(ctx.session, org_id, thing_type, for_update=True)
    if existing is None:
        row = await repo.insert(ctx.session, {"org_id": org_id, "thing_type": thing_type, **values})
        if row is None:  # a concurrent set won: judge this one against it
            return await set_type_schema(ctx, request)
        await _emit(ctx, EventType.ENTITY_CREATED, row, {"schemaVersion": row.version})
        return TypeSchemaSaved(type_schema=_reply(row), outcome="created")
    _require_owner(existing, request.source)
    if existing.properties_schema == schema and existing.description == request.description:
        return TypeSchemaSaved(type_schema=_reply(existing), outcome="unchanged")
    row = await repo.replace(ctx.session, org_id, thing_type, values)
    await _emit(ctx, EventType.ENTITY_UPDATED, row, {"schemaVersion": row.version})
    return TypeSchemaSaved(type_schema=_reply(row), outcome="updated")


async def remove_type_schema(ctx: WorkContext, request: TypeSchemaRemove) -> TypeSchemaRemoval:
    """Remove the owner's schema unless live things of the type would be left ungoverned (then it stays)."""
    require(ctx.auth, "type_schemas", "delete")
    thing_type = _thing_type(request.type)
    existing = await repo.get(ctx.session, ctx.auth.org_id, thing_type, for_update=True)
    if existing is None:
        return TypeSchemaRemoval(type=thing_type, outcome="absent")
    _require_owner(existing, request.source)
    live = await repo.count_live_things(ctx.session, ctx.auth.org_id, thing_type)
    if live:
        return TypeSchemaRemoval(type=thing_type, outcome="kept", live_things=live,
                                 reason=f"{live} live {thing_type} thing(s) in this organization follow it")
    await repo.delete(ctx.session, ctx.auth.org_id, thing_type)
    await _emit(ctx, EventType.ENTITY_DELETED, existing, {})
    return TypeSchemaRemoval(type=thing_type, outcome="removed")


async def list_type_schemas(ctx: WorkContext) -> TypeSchemas:
    require(ctx.auth, "type_schemas", "list")
    return TypeSchemas(schemas=[_reply(row) for row in await repo.list_all(ctx.session, ctx.auth.org_id)])


def _thing_type(name: str) -> str:
    """Schemas go on the ontology's own thing types; a granular alias folds its variant into the properties."""
    if not is_thing_type(name):
        raise UnknownType(f"{name!r} is not an ontology thing type", {"type": name})
    return name


def _require_owner(row: TypeSchemaRow, source: str) -> None:
    if row.source != source:
        raise TypeSchemaOwned(
            f"the {row.thing_type} schema of this organization belongs to {row.source}, not {source}",
            {"type": row.thing_type, "owner": row.source, "source": source},
        )


async def _emit(ctx: WorkContext, event: EventType, row: TypeSchemaRow, extra: dict[str, Any]) -> None:
    await ctx.emit(event, target_id=type_schema_id(row.org_id, row.thing_type), target_type="type_schema",
                   metadata={"entityType": "type_schema", "thingType": row.thing_type, "source": row.source, **extra})
