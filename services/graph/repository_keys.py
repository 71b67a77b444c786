"""The SQL of sealing the secrets stored before sealing existed (`keys_backlog.py`): the backlog the migration
filled, and rewriting a thing's properties in place (a storage change, not a domain change: no version bump)."""

import json
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_CLAIM = sa.text(
    "SELECT org_id, thing_id FROM graph.sealing_backlog ORDER BY org_id, thing_id LIMIT :n FOR UPDATE SKIP LOCKED"
)
_DONE = sa.text("DELETE FROM graph.sealing_backlog WHERE org_id = :org AND thing_id = :id")
_SET_TENANT = sa.text("SELECT set_config('app.org_id', :org, true)")
_PROPERTIES = sa.text("SELECT properties FROM graph.things WHERE org_id = :org AND id = :id FOR UPDATE")
_REWRITE = sa.text("UPDATE graph.things SET properties = CAST(:p AS jsonb) WHERE org_id = :org AND id = :id")


async def claim_backlog(session: AsyncConnection, batch: int) -> list[tuple[UUID, UUID]]:
    return [(row.org_id, row.thing_id) for row in await session.execute(_CLAIM, {"n": batch})]


async def stored_properties(session: AsyncConnection, org_id: UUID, thing_id: UUID) -> dict[str, Any] | None:
    """The thing's properties, locked, read as its org (Row-Level Security set to it for the rest of the batch)."""
    await session.execute(_SET_TENANT, {"org": str(org_id)})
    return (await session.execute(_PROPERTIES, {"org": org_id, "id": thing_id})).scalar()


async def rewrite_properties(session: AsyncConnection, org_id: UUID, thing_id: UUID, properties: dict[str, Any]) -> None:
    await session.execute(_REWRITE, {"org": org_id, "id": thing_id, "p": json.dumps(properties)})


async def backlog_done(session: AsyncConnection, org_id: UUID, thing_id: UUID) -> None:
    await session.execute(_DONE, {"org": org_id, "id": thing_id})
