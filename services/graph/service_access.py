"""Access rules managed (org owners: `access_rules:update` / `delete`, listing `access_rules:list`), and the
batched visibility question other services ask (`graph.access.visible`). No SQL here (repository_access.py).

A rule's id is a UUIDv5 of its natural key (org, role, type, field — or rule, connection type, effect),
so `set` is an upsert that changes nothing, and emits nothing, when the same rule is set again. Every
change is an event (`entity_created` / `entity_updated` / `entity_deleted`, target type `field_mask` or
`scope_rule`). The functions run in the transaction app_access.py opens; it tells the replicas after commit.
"""

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from services.graph import access, repository_access as repo
from services.graph.service import resolve_type as thing_type_of
from services.graph.service_connections import resolve_type as connection_type_of
from shared.contracts.graph.access import (
    AccessRuleFilter,
    AccessRuleNotFound,
    FieldMask,
    FieldMasks,
    FieldMaskSet,
    ScopeRule,
    ScopeRules,
    ScopeRuleSet,
    Visibility,
    VisibleQuery,
)
from shared.kernel.errors import Forbidden
from shared.kernel.ontology import EventType, Role
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_TARGET = {"mask": "field_mask", "scope": "scope_rule"}


def _rule_id(kind: str, org_id: UUID, *key: str | None) -> UUID:
    return uuid5(NAMESPACE_URL, f"one:graph:access:{kind}:{org_id}:" + "|".join(k or "" for k in key))


def _thing_type(name: str) -> str:
    return "*" if name == "*" else thing_type_of(name)[0].value


def _check_role(role: str) -> None:
    if role == Role.PLATFORM_OWNER:
        raise Forbidden("the platform owner's access is not an organization's to restrict")


def _event_metadata(kind: str, row: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"entityType": _TARGET[kind], "role": row.role, "thingType": row.thing_type}
    if kind == "mask":
        metadata |= {"field": row.field, "mode": row.mode, "priority": row.priority}
    else:
        metadata |= {"rule": row.rule, "connectionType": row.connection_type, "effect": row.effect}
    return metadata


async def _upsert(ctx: WorkContext, kind: str, values: dict[str, Any], changing: tuple[str, ...]) -> Any:
    existing = await repo.get_rule(ctx.session, kind, values["org_id"], values["id"])
    if existing is not None and all(getattr(existing, name) == values[name] for name in changing):
        return existing
    row = await repo.upsert_rule(ctx.session, kind, values, changing)
    event = EventType.ENTITY_CREATED if existing is None else EventType.ENTITY_UPDATED
    await ctx.emit(event, target_id=row.id, target_type=_TARGET[kind], metadata=_event_metadata(kind, row))
    return row


async def set_mask(ctx: WorkContext, request: FieldMaskSet) -> FieldMask:
    require(ctx.auth, "access_rules", "update")
    _check_role(request.role)
    org_id, thing_type = ctx.auth.org_id, _thing_type(request.thing_type)
    values = {"id": _rule_id("mask", org_id, request.role, thing_type, request.field), "org_id": org_id,
              "role": request.role, "thing_type": thing_type, "field": request.field, "mode": request.mode,
              "priority": request.priority}
    return FieldMask.model_validate(await _upsert(ctx, "mask", values, ("mode", "priority")), from_attributes=True)


async def set_scope(ctx: WorkContext, request: ScopeRuleSet) -> ScopeRule:
    require(ctx.auth, "access_rules", "update")
    _check_role(request.role)
    org_id, thing_type = ctx.auth.org_id, _thing_type(request.thing_type)
    connection = connection_type_of(request.connection_type)[0].value if request.connection_type else None
    values = {"id": _rule_id("scope", org_id, request.role, thing_type, request.rule, connection, request.effect),
              "org_id": org_id, "role": request.role, "thing_type": thing_type, "rule": request.rule,
              "connection_type": connection, "effect": request.effect}
    return ScopeRule.model_validate(await _upsert(ctx, "scope", values, ()), from_attributes=True)


async def remove(ctx: WorkContext, kind: str, rule_id: UUID) -> UUID:
    require(ctx.auth, "access_rules", "delete")
    row = await repo.delete_rule(ctx.session, kind, ctx.auth.org_id, rule_id)
    if row is None:
        raise AccessRuleNotFound(f"no {_TARGET[kind].replace('_', ' ')} {rule_id} in this organization",
                                 {"id": str(rule_id)})
    await ctx.emit(EventType.ENTITY_DELETED, target_id=row.id, target_type=_TARGET[kind],
                   metadata=_event_metadata(kind, row))
    return row.id


async def _listed(ctx: WorkContext, kind: str, query: AccessRuleFilter) -> list[Any]:
    require(ctx.auth, "access_rules", "list")
    thing_type = _thing_type(query.thing_type) if query.thing_type else None
    return await repo.list_rules(ctx.session, kind, ctx.auth.org_id, query.role, thing_type)


async def list_masks(ctx: WorkContext, query: AccessRuleFilter) -> FieldMasks:
    rows = await _listed(ctx, "mask", query)
    return FieldMasks(masks=[FieldMask.model_validate(r, from_attributes=True) for r in rows])


async def list_scopes(ctx: WorkContext, query: AccessRuleFilter) -> ScopeRules:
    rows = await _listed(ctx, "scope", query)
    return ScopeRules(rules=[ScopeRule.model_validate(r, from_attributes=True) for r in rows])


async def visible(ctx: WorkContext, query: VisibleQuery) -> Visibility:
    """Which asked things the caller's scope rules admit, and which asked fields its masks hide on each.

    No RBAC check of its own: it answers only about ids the caller already holds (a search hit's
    citation), by the caller's own rules. A caller no rule restricts gets every id back unread.
    """
    view = await access.view_of(ctx)
    ids = list(dict.fromkeys(query.thing_ids))
    if view is None:
        return Visibility(visible=ids)
    types = await repo.visible_types(ctx.session, ctx.auth.org_id, ids, view.scope("t"))
    hidden: dict[UUID, list[str]] = {}
    for thing_id, thing_type in types.items():
        fields = [f for f in query.fields if view.hidden(thing_type, tuple(f.split(".")))]
        if fields:
            hidden[thing_id] = fields
    return Visibility(visible=[i for i in ids if i in types], hidden_fields=hidden)
