"""The SQL of access rules: the rule tables, and the scope condition every read of things carries.

`scope_condition` writes a role's scope rules as one SQL condition on a `graph.things` alias, so
queries and traversals filter in the database (pages stay full, a traversal never walks through a
thing the caller may not see). Its parameters are named `acc_*`, apart from any statement's own.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.graph.models import field_masks, scope_rules


class ScopeRuleLike(Protocol):
    thing_type: str
    rule: str
    connection_type: str | None
    effect: str


@dataclass(frozen=True, slots=True)
class ScopeSql:
    """A condition on one alias of `graph.things`, as SQL text and its bind parameters."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def clause(self) -> sa.TextClause:
        return sa.text(self.text).bindparams(**self.params)


_LIVE_LINK = "acc_c.org_id = {t}.org_id AND acc_c.valid_from <= now() AND (acc_c.valid_to IS NULL OR acc_c.valid_to > now())"


def _kind(rule: ScopeRuleLike, t: str, index: int, params: dict[str, Any]) -> str:
    live = _LIVE_LINK.format(t=t)
    if rule.rule == "all":
        return "TRUE"
    if rule.rule == "own":
        return (
            f"({t}.id = CAST(:acc_actor AS uuid) OR {t}.created_by = CAST(:acc_actor AS uuid)"
            f" OR EXISTS (SELECT 1 FROM graph.connections acc_c WHERE {live} AND acc_c.type = 'owns'"
            f" AND acc_c.from_id = CAST(:acc_actor AS uuid) AND acc_c.to_id = {t}.id)"
            f" OR EXISTS (SELECT 1 FROM graph.connections acc_c WHERE {live} AND acc_c.type = 'created_by'"
            f" AND acc_c.from_id = {t}.id AND acc_c.to_id = CAST(:acc_actor AS uuid)))"
        )
    params[f"acc_c{index}"] = rule.connection_type
    return (
        f"(EXISTS (SELECT 1 FROM graph.connections acc_c WHERE {live} AND acc_c.type = :acc_c{index}"
        f" AND acc_c.from_id = {t}.id AND acc_c.to_id = CAST(:acc_actor AS uuid))"
        f" OR EXISTS (SELECT 1 FROM graph.connections acc_c WHERE {live} AND acc_c.type = :acc_c{index}"
        f" AND acc_c.from_id = CAST(:acc_actor AS uuid) AND acc_c.to_id = {t}.id))"
    )


def _typed(rule: ScopeRuleLike, condition: str, t: str, index: int, params: dict[str, Any]) -> str:
    if rule.thing_type == "*":
        return condition
    params[f"acc_t{index}"] = rule.thing_type
    return f"({t}.type = :acc_t{index} AND {condition})"


def scope_condition(rules: Sequence[ScopeRuleLike], actor_id: UUID, alias: str) -> ScopeSql | None:
    """Visible = (no allow rule covers the thing's type, or one admits it) and no deny rule matches it."""
    if not rules:
        return None
    params: dict[str, Any] = {"acc_actor": actor_id}
    allows, denies = [], []
    for index, rule in enumerate(rules):
        condition = _typed(rule, _kind(rule, alias, index, params), alias, index, params)
        (denies if rule.effect == "deny" else allows).append(condition)
    parts = []
    allowed_types = {r.thing_type for r in rules if r.effect == "allow"}
    if allows:
        admitted = " OR ".join(allows)
        if "*" in allowed_types:
            parts.append(f"({admitted})")
        else:
            params["acc_types"] = sorted(allowed_types)
            parts.append(f"(NOT ({alias}.type = ANY(CAST(:acc_types AS text[]))) OR {admitted})")
    if denies:
        parts.append(f"NOT ({' OR '.join(denies)})")
    text = "(" + " AND ".join(parts) + ")"
    if ":acc_actor" not in text:  # `all` rules alone name no actor
        del params["acc_actor"]
    return ScopeSql(text, params)


async def visible_types(
    session: AsyncConnection, org_id: UUID, ids: Sequence[UUID], scope: ScopeSql | None
) -> dict[UUID, str]:
    """The type of each of `ids` that is a live thing of the org the scope admits."""
    condition = f" AND {scope.text}" if scope else ""
    statement = sa.text(
        "SELECT t.id, t.type FROM graph.things t WHERE t.org_id = :acc_org AND t.id = ANY(CAST(:acc_ids AS uuid[]))"
        f" AND t.deleted_at IS NULL{condition}"
    ).bindparams(acc_org=org_id, acc_ids=list(ids), **(scope.params if scope else {}))
    return {row.id: row.type for row in await session.execute(statement)}


async def load_rules(session: AsyncConnection, org_id: UUID) -> tuple[list[sa.Row[Any]], list[sa.Row[Any]]]:
    """Every field mask and scope rule of the org (what a replica caches)."""
    masks = (await session.execute(sa.select(field_masks).where(field_masks.c.org_id == org_id))).all()
    scopes = (await session.execute(sa.select(scope_rules).where(scope_rules.c.org_id == org_id))).all()
    return list(masks), list(scopes)


def _table(kind: str) -> sa.Table:
    return field_masks if kind == "mask" else scope_rules


async def get_rule(session: AsyncConnection, kind: str, org_id: UUID, rule_id: UUID) -> sa.Row[Any] | None:
    table = _table(kind)
    statement = sa.select(table).where(table.c.org_id == org_id, table.c.id == rule_id).with_for_update()
    return (await session.execute(statement)).first()


async def upsert_rule(session: AsyncConnection, kind: str, values: dict[str, Any], changing: Sequence[str]) -> sa.Row[Any]:
    """Insert the rule, or update its `changing` columns when its id (its natural key) exists already."""
    table = _table(kind)
    insert = pg_insert(table).values(**values)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={**{name: insert.excluded[name] for name in changing}, "updated_at": sa.func.clock_timestamp()},
    ).returning(table)
    return (await session.execute(statement)).one()


async def delete_rule(session: AsyncConnection, kind: str, org_id: UUID, rule_id: UUID) -> sa.Row[Any] | None:
    table = _table(kind)
    statement = sa.delete(table).where(table.c.org_id == org_id, table.c.id == rule_id).returning(table)
    return (await session.execute(statement)).first()


async def list_rules(
    session: AsyncConnection, kind: str, org_id: UUID, role: str | None, thing_type: str | None
) -> list[sa.Row[Any]]:
    table = _table(kind)
    conditions = [table.c.org_id == org_id]
    if role is not None:
        conditions.append(table.c.role == role)
    if thing_type is not None:
        conditions.append(table.c.thing_type == thing_type)
    statement = sa.select(table).where(*conditions).order_by(table.c.role, table.c.thing_type, table.c.id)
    return list((await session.execute(statement)).all())
