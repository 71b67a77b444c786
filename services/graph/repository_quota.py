"""The SQL of the things quota's pending settlements (`graph.quota_pending`, see migrations/v0003_identity.py).

A row is written in a create's own transaction and deleted once tenancy has settled the
reservation; the settler reads what is left across orgs (the table is the service's own queue).
"""

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.graph.models import quota_pending


async def add_pending(session: AsyncSession, reservation_id: UUID, org_id: UUID, actor_id: UUID, used: int) -> None:
    await session.execute(
        quota_pending.insert().values(reservation_id=reservation_id, org_id=org_id, actor_id=actor_id, used=used)
    )


async def remove_pending(session: AsyncSession, reservation_ids: Sequence[UUID]) -> None:
    await session.execute(quota_pending.delete().where(quota_pending.c.reservation_id.in_(list(reservation_ids))))


async def stale_pending(session: AsyncSession, older_than_seconds: float, limit: int = 500) -> list[sa.Row]:
    """Settlements nobody finished (the graph died, or tenancy did not answer), oldest first."""
    cutoff = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds)
    statement = (
        sa.select(quota_pending).where(quota_pending.c.created_at < cutoff)
        .order_by(quota_pending.c.created_at).limit(limit)
    )
    return list((await session.execute(statement)).all())
