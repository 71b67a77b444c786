"""Every SQL statement of the social links: live-link inserts that cannot repeat, and counters that move atomically.

A counter is one atomic `UPDATE ... SET properties = properties || ...` computed from the row as it is when
the UPDATE gets its lock (Postgres re-reads a row another transaction changed), never read into Python and
written back, so concurrent follows all count. The rows of one change are updated in id order, so two changes
touching the same two things (a follows b while b follows a) cannot deadlock. Each statement filters on the org.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.graph.models import connections, things
from services.graph.rows import ConnectionRow

_LIVE_LINKS = {
    "following": (["org_id", "from_id", "to_id"], sa.text("type = 'following' AND valid_to IS NULL")),
    "participated_in": (
        ["org_id", "from_id", "to_id", sa.text("(metadata->>'reaction')")],
        sa.text("type = 'participated_in' AND valid_to IS NULL AND metadata ? 'reaction'"),
    ),
}
"""The unique partial indexes of migration v0006, as `ON CONFLICT` names them."""


@dataclass(frozen=True, slots=True)
class Bump:
    """Add `delta` to the number `properties[key]` of a thing (or to `properties[key][sub]` when `sub` is set)."""

    thing_id: UUID
    key: str
    delta: int
    sub: str | None = None


async def live_types(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> dict[UUID, str]:
    """The types of those of `ids` that are live things of this org."""
    statement = sa.select(things.c.id, things.c.type).where(
        things.c.org_id == org_id, things.c.id.in_(list(ids)), things.c.deleted_at.is_(None)
    )
    return {row.id: row.type for row in await session.execute(statement)}


async def insert_live_link(session: AsyncConnection, values: dict[str, Any]) -> ConnectionRow | None:
    """Insert the link unless the same one is live already (then None: nothing changed)."""
    elements, where = _LIVE_LINKS[values["type"]]
    statement = (
        pg_insert(connections).values(**values)
        .on_conflict_do_nothing(index_elements=elements, index_where=where)
        .returning(connections)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else ConnectionRow(*row)


async def end_live_link(
    session: AsyncConnection, org_id: UUID, from_id: UUID, to_id: UUID, type_: str, reaction: str | None = None
) -> ConnectionRow | None:
    """End the live link (`valid_to` now); None when there was none."""
    conditions = [
        connections.c.org_id == org_id, connections.c.from_id == from_id, connections.c.to_id == to_id,
        connections.c.type == type_, connections.c.valid_to.is_(None),
    ]
    if reaction is not None:
        conditions.append(connections.c.metadata["reaction"].astext == reaction)
    statement = (
        sa.update(connections).where(*conditions)
        .values(valid_to=sa.func.clock_timestamp(), updated_at=sa.func.clock_timestamp())
        .returning(connections)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else ConnectionRow(*row)


def _number(json: str) -> str:
    """SQL: the JSON value as a number, 0 when it is missing or not a number."""
    return f"(CASE WHEN jsonb_typeof({json}) = 'number' THEN ({json})::text::numeric ELSE 0 END)"


async def bump(session: AsyncConnection, org_id: UUID, bumps: Sequence[Bump]) -> dict[UUID, dict[str, Any]]:
    """Apply the bumps (one UPDATE per thing, in id order); each thing's properties afterwards."""
    by_thing: dict[UUID, list[Bump]] = {}
    for change in bumps:
        by_thing.setdefault(change.thing_id, []).append(change)
    after: dict[UUID, dict[str, Any]] = {}
    for thing_id in sorted(by_thing):
        pairs: list[str] = []
        params: dict[str, Any] = {"org": org_id, "id": thing_id}
        for i, change in enumerate(by_thing[thing_id]):
            params[f"k{i}"], params[f"d{i}"] = change.key, change.delta
            key, delta = f"CAST(:k{i} AS text)", f"CAST(:d{i} AS integer)"
            if change.sub is None:
                value = f"GREATEST({_number(f'properties->{key}')} + {delta}, 0)"
            else:
                params[f"s{i}"] = change.sub
                sub = f"CAST(:s{i} AS text)"
                inner = f"(CASE WHEN jsonb_typeof(properties->{key}) = 'object' THEN properties->{key} ELSE '{{}}' END)"
                count = f"GREATEST({_number(f'properties->{key}->{sub}')} + {delta}, 0)"
                value = f"{inner} || jsonb_build_object({sub}, {count})"
            pairs.append(f"{key}, {value}")
        statement = sa.text(
            f"UPDATE graph.things SET properties = properties || jsonb_build_object({', '.join(pairs)})"
            " WHERE org_id = :org AND id = :id RETURNING properties"
        )
        after[thing_id] = (await session.execute(statement, params)).scalar_one()
    return after


async def properties_of(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    statement = sa.select(things.c.id, things.c.properties).where(things.c.org_id == org_id, things.c.id.in_(list(ids)))
    return {row.id: row.properties for row in await session.execute(statement)}
