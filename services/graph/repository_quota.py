"""The SQL of the things quota's leases in use (`graph.quota_pending`, see migrations/v0003 and v0008).

A row is one create's use of a lease, written in the create's own transaction; the lease's rows
are summed when it is settled with tenancy, and deleted once tenancy has counted them. The settler
reads what is left of expired leases across orgs (the table is the service's own queue).
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.graph.models import quota_pending


async def add_pending(
    session: AsyncConnection, reservation_id: UUID, org_id: UUID, actor_id: UUID, used: int, expires_at: datetime
) -> None:
    await session.execute(quota_pending.insert().values(
        reservation_id=reservation_id, org_id=org_id, actor_id=actor_id, used=used, expires_at=expires_at,
    ))


async def used_of(session: AsyncConnection, reservation_id: UUID) -> int:
    """The units the committed creates took from a lease."""
    statement = sa.select(sa.func.coalesce(sa.func.sum(quota_pending.c.used), 0)).where(
        quota_pending.c.reservation_id == reservation_id
    )
    return int((await session.execute(statement)).scalar_one())


async def remove_pending(session: AsyncConnection, reservation_ids: Sequence[UUID]) -> None:
    await session.execute(quota_pending.delete().where(quota_pending.c.reservation_id.in_(list(reservation_ids))))


async def expired_leases(session: AsyncConnection, older_than_seconds: float, limit: int = 500) -> list[sa.Row]:
    """Leases whose tenancy reservation expired `older_than_seconds` ago or more and whose use nobody settled
    (the holder died, or tenancy did not answer): one row each, with the units its creates took, oldest first."""
    cutoff = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds)
    statement = (
        sa.select(quota_pending.c.reservation_id, quota_pending.c.org_id, sa.func.sum(quota_pending.c.used).label("used"))
        .where(quota_pending.c.expires_at < cutoff)
        .group_by(quota_pending.c.reservation_id, quota_pending.c.org_id)
        .order_by(sa.func.min(quota_pending.c.expires_at))
        .limit(limit)
    )
    return list((await session.execute(statement)).all())
