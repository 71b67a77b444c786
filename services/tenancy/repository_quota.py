"""Every SQL statement about quota reservations; always org-scoped, each made holding the quota row's lock.

A reservation is taken and settled with the quota row locked (`lock_quota`), so a reservation,
a settle and a plain consume of the same quota are serialized, and each statement after the lock
sees every reservation committed before it: racing callers cannot overshoot the limit.
"""

from datetime import timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy.models import quota_reservations, quotas
from services.tenancy.repository import Row
from services.tenancy.repository_access import _RESERVED, _USED, _change_quota, get_quota, lock_quota


async def reserve(
    session: AsyncConnection, org_id: UUID, reservation_id: UUID, metric: str, amount: int, ttl_seconds: float,
    at_least: int | None = None,
) -> tuple[Row, int] | None:
    """Hold `amount` units until settled or `ttl_seconds` from now, if they fit, or (`at_least` given) as many as
    fit down to `at_least`; the quota as of now and the units held, or None when not enough fit.

    The caller locked the quota row (`lock_quota`), so what fits cannot change before the insert.
    """
    if at_least is not None:
        free = sa.select(quotas.c.quota_limit - _USED - _RESERVED).where(quotas.c.org_id == org_id,
                                                                         quotas.c.metric == metric)
        amount = max(min(amount, (await session.execute(free)).scalar_one()), min(at_least, amount))
    fits = _change_quota(org_id, metric).where(_USED + _RESERVED + amount <= quotas.c.quota_limit).values(used=_USED)
    if (await session.execute(fits)).first() is None:
        return None
    await session.execute(quota_reservations.insert().values(
        id=reservation_id, org_id=org_id, metric=metric, amount=amount,
        expires_at=sa.func.clock_timestamp() + timedelta(seconds=ttl_seconds),
    ))
    return await get_quota(session, org_id, metric), amount


async def reservation(session: AsyncConnection, org_id: UUID, reservation_id: UUID) -> Row | None:
    statement = sa.select(quota_reservations).where(
        quota_reservations.c.org_id == org_id, quota_reservations.c.id == reservation_id
    )
    return (await session.execute(statement)).first()


async def settle(session: AsyncConnection, org_id: UUID, reservation_id: UUID, metric: str, used: int) -> bool:
    """Count `used` of the reservation's units and free the rest, once: False when it was settled already.

    Counted even after the reservation expired: the caller's work committed, so its units are real.
    """
    await lock_quota(session, org_id, metric)
    settled = (
        quota_reservations.update()
        .where(quota_reservations.c.org_id == org_id, quota_reservations.c.id == reservation_id,
               quota_reservations.c.settled_at.is_(None))
        .values(used=used, settled_at=sa.func.clock_timestamp())
        .returning(quota_reservations.c.id)
    )
    if (await session.execute(settled)).first() is None:
        return False
    if used:
        await session.execute(_change_quota(org_id, metric).values(used=_USED + used))
    return True

