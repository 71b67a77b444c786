"""The SQL of mirroring tenancy's identity: the things and `member_of` connections of one org, under its lock."""

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.graph.models import connections, things
from services.graph.rows import ConnectionRow, ThingRow


async def lock_org_identity(session: AsyncConnection, org_id: UUID) -> None:
    """One reconciliation of an org at a time (replicas, a backfill and the consumer alike), until commit."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                          {"key": f"graph.identity:{org_id}"})


async def things_by_ids(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> dict[UUID, ThingRow]:
    """The org's things with these ids, deleted ones included (history is kept, never re-created)."""
    statement = sa.select(things).where(things.c.org_id == org_id, things.c.id.in_(list(ids)))
    return {row.id: row for row in (ThingRow(*r) for r in await session.execute(statement))}


async def open_memberships(session: AsyncConnection, org_id: UUID) -> list[ConnectionRow]:
    """The org's `member_of` connections into its own thing that have not ended."""
    statement = sa.select(connections).where(
        connections.c.org_id == org_id, connections.c.to_id == org_id, connections.c.type == "member_of",
        connections.c.valid_to.is_(None),
    )
    return [ConnectionRow(*row) for row in await session.execute(statement)]
