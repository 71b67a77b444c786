"""Every SQL statement about API keys, roles and policies, quotas and rate limits; always org-scoped.

The quota and rate-limit counters change in one conditional statement each, so
concurrent callers can never push a counter past its limit: Postgres re-checks
the `WHERE` on the locked row before it updates.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy.models import api_keys, policies, quota_reservations, quotas, rate_limit_rules, roles
from services.tenancy.repository import Row, insert_unique


async def insert_key(session: AsyncConnection, values: dict[str, Any]) -> None:
    await session.execute(api_keys.insert().values(**values))


async def key_for_verification(session: AsyncConnection, key_id: str) -> Row | None:
    """Needs `platform_access`: the key's row is what tells us its org."""
    return (await session.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))).first()


async def touch_key(session: AsyncConnection, org_id: UUID, key_id: str) -> None:
    await session.execute(
        api_keys.update().where(api_keys.c.org_id == org_id, api_keys.c.key_id == key_id).values(last_used_at=sa.func.now())
    )


async def get_key(session: AsyncConnection, org_id: UUID, key_id: str) -> Row | None:
    statement = sa.select(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.key_id == key_id)
    return (await session.execute(statement)).first()


async def list_keys(session: AsyncConnection, org_id: UUID, person_id: UUID | None) -> Sequence[Row]:
    statement = sa.select(api_keys).where(api_keys.c.org_id == org_id).order_by(api_keys.c.created_at)
    if person_id is not None:
        statement = statement.where(api_keys.c.person_id == person_id)
    return (await session.execute(statement)).all()


async def revoke_keys(session: AsyncConnection, org_id: UUID, *, key_id: str | None = None, person_id: UUID | None = None) -> list[str]:
    """Revoke one key or all of a person's keys in the org; returns the key ids revoked now."""
    statement = (
        api_keys.update()
        .where(api_keys.c.org_id == org_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
        .returning(api_keys.c.key_id)
    )
    if key_id is not None:
        statement = statement.where(api_keys.c.key_id == key_id)
    if person_id is not None:
        statement = statement.where(api_keys.c.person_id == person_id)
    return list((await session.execute(statement)).scalars())


async def insert_role(session: AsyncConnection, values: dict[str, Any]) -> None:
    await insert_unique(session, roles, values, "a role with this name")


async def custom_roles(session: AsyncConnection, org_id: UUID) -> Sequence[Row]:
    return (await session.execute(sa.select(roles).where(roles.c.org_id == org_id).order_by(roles.c.name))).all()


async def role_exists(session: AsyncConnection, org_id: UUID, name: str) -> bool:
    statement = sa.select(sa.literal(1)).where(roles.c.org_id == org_id, roles.c.name == name)
    return (await session.execute(statement)).first() is not None


async def insert_policy(session: AsyncConnection, values: dict[str, Any]) -> None:
    await session.execute(policies.insert().values(**values))


async def delete_policy(session: AsyncConnection, org_id: UUID, policy_id: UUID) -> str | None:
    """The role the deleted policy belonged to; None when there was no such policy."""
    statement = policies.delete().where(policies.c.org_id == org_id, policies.c.id == policy_id).returning(policies.c.role)
    return (await session.execute(statement)).scalar_one_or_none()


async def org_policies(session: AsyncConnection, org_id: UUID, role: str | None = None) -> Sequence[Row]:
    statement = sa.select(policies).where(policies.c.org_id == org_id).order_by(policies.c.role, policies.c.priority.desc())
    if role is not None:
        statement = statement.where(policies.c.role == role)
    return (await session.execute(statement)).all()


async def set_quota_limit(session: AsyncConnection, org_id: UUID, metric: str, limit: int, resets_monthly: bool) -> None:
    statement = pg_insert(quotas).values(org_id=org_id, metric=metric, quota_limit=limit, used=0, resets_monthly=resets_monthly)
    statement = statement.on_conflict_do_update(
        index_elements=[quotas.c.org_id, quotas.c.metric],
        set_={"quota_limit": limit, "resets_monthly": resets_monthly},
    )
    await session.execute(statement)


_MONTH = sa.func.date_trunc("month", sa.func.now())
_ROLLED_OVER = sa.and_(quotas.c.resets_monthly, quotas.c.period_start < _MONTH)
_USED = sa.case((_ROLLED_OVER, 0), else_=quotas.c.used)
"""A quota's `used` as of now: a monthly metric whose period began before this month counts from zero.
Consume, release and every read go through this (and `_PERIOD_START`), so none of them sees a stale month."""
_PERIOD_START = sa.case((_ROLLED_OVER, _MONTH), else_=quotas.c.period_start)
_RESERVED = (
    sa.select(sa.cast(sa.func.coalesce(sa.func.sum(quota_reservations.c.amount), 0), sa.BigInteger))
    .where(quota_reservations.c.org_id == quotas.c.org_id, quota_reservations.c.metric == quotas.c.metric,
           quota_reservations.c.settled_at.is_(None), quota_reservations.c.expires_at > sa.func.clock_timestamp())
    .correlate(quotas)
    .scalar_subquery()
)
"""Units held by live reservations (unsettled, unexpired): they count as used until settled or expired."""
_CURRENT = (quotas.c.metric, quotas.c.quota_limit, _USED.label("used"), quotas.c.resets_monthly,
            _PERIOD_START.label("period_start"), _RESERVED.label("reserved"))
_CHANGED = (quotas.c.metric, quotas.c.quota_limit, quotas.c.used, quotas.c.resets_monthly,
            quotas.c.period_start, _RESERVED.label("reserved"))
"""A quota as replies show it: `used` the units counted, `reserved` those live reservations hold (both count
against the limit; a lease's unused units never become `used`)."""


def _change_quota(org_id: UUID, metric: str) -> sa.Update:
    """Moves a monthly metric into the current period as it changes it (`SET` sees the row as it was)."""
    return (
        quotas.update()
        .where(quotas.c.org_id == org_id, quotas.c.metric == metric)
        .values(period_start=_PERIOD_START, updated_at=sa.func.now())
        .returning(*_CHANGED)
    )


async def lock_quota(session: AsyncConnection, org_id: UUID, metric: str) -> bool:
    """Lock the quota row for the transaction; False when there is no such quota.

    Every change of `used` and every reservation is made holding this lock, and a statement run
    after it takes a fresh snapshot (READ COMMITTED): it sees every reservation committed before.
    """
    statement = sa.select(quotas.c.metric).where(quotas.c.org_id == org_id, quotas.c.metric == metric).with_for_update()
    return (await session.execute(statement)).first() is not None


async def consume_quota(session: AsyncConnection, org_id: UUID, metric: str, amount: int) -> Row | None:
    """Add `amount` if it fits under the limit with the live reservations, atomically; None when it does not
    (or no such metric). The row is locked first, so the reservations counted are all those committed."""
    if not await lock_quota(session, org_id, metric):
        return None
    statement = _change_quota(org_id, metric).where(_USED + _RESERVED + amount <= quotas.c.quota_limit)
    return (await session.execute(statement.values(used=_USED + amount))).first()


async def release_quota(session: AsyncConnection, org_id: UUID, metric: str, amount: int) -> Row | None:
    """Give `amount` back to the current period, never below zero; None when there is no such metric."""
    statement = _change_quota(org_id, metric).values(used=sa.func.greatest(_USED - amount, 0))
    return (await session.execute(statement)).first()


async def get_quota(session: AsyncConnection, org_id: UUID, metric: str) -> Row | None:
    statement = sa.select(*_CURRENT).where(quotas.c.org_id == org_id, quotas.c.metric == metric)
    return (await session.execute(statement)).first()


async def usage_of(session: AsyncConnection, org_id: UUID) -> Sequence[Row]:
    """Every quota of the org, as of the current period."""
    statement = sa.select(*_CURRENT).where(quotas.c.org_id == org_id).order_by(quotas.c.metric)
    return (await session.execute(statement)).all()


async def set_rate_rule(session: AsyncConnection, org_id: UUID, scope: str, operation: str, max_calls: int, window: int) -> None:
    statement = pg_insert(rate_limit_rules).values(
        org_id=org_id, scope=scope, operation=operation, max_calls=max_calls, window_seconds=window
    )
    statement = statement.on_conflict_do_update(
        index_elements=[rate_limit_rules.c.org_id, rate_limit_rules.c.scope, rate_limit_rules.c.operation],
        set_={"max_calls": max_calls, "window_seconds": window},
    )
    await session.execute(statement)


async def rate_rules(session: AsyncConnection, org_id: UUID) -> Sequence[Row]:
    statement = sa.select(rate_limit_rules).where(rate_limit_rules.c.org_id == org_id)
    return (await session.execute(statement.order_by(rate_limit_rules.c.scope, rate_limit_rules.c.operation))).all()


_HIT = sa.text(
    """
    WITH clock AS (
        SELECT to_timestamp(floor(extract(epoch FROM now()) / CAST(:seconds AS integer)) * CAST(:seconds AS integer))
               AS window_start
    ), hit AS (
        INSERT INTO tenancy.rate_limit_windows AS w (org_id, bucket, window_start, calls)
        SELECT :org_id, :bucket, clock.window_start, 1 FROM clock
        ON CONFLICT (org_id, bucket, window_start) DO UPDATE SET calls = w.calls + 1
        WHERE w.calls < :max_calls
        RETURNING w.calls
    )
    SELECT (SELECT calls FROM hit) AS calls,
           extract(epoch FROM clock.window_start + make_interval(secs => CAST(:seconds AS integer)) - now()) AS seconds_left
    FROM clock
    """
)


async def hit_window(session: AsyncConnection, org_id: UUID, bucket: str, max_calls: int, seconds: int) -> tuple[int | None, float]:
    """Count one call in the current `seconds` window if it is under the limit, and the seconds the window has left.

    The window is the database's: its start and what is left of it come from
    Postgres' `now()` (the transaction's start, so every window of one call is
    judged at the same instant), never from this process's clock, so replicas
    with skewed clocks share windows. Calls is None when the window is full.
    """
    params = {"org_id": org_id, "bucket": bucket, "max_calls": max_calls, "seconds": seconds}
    row = (await session.execute(_HIT, params)).one()
    return row.calls, float(row.seconds_left)


async def prune_windows(session: AsyncConnection, org_id: UUID, older_than_seconds: int) -> None:
    await session.execute(
        sa.text(
            "DELETE FROM tenancy.rate_limit_windows WHERE org_id = :org_id"
            " AND window_start < now() - make_interval(secs => CAST(:seconds AS integer))"
        ),
        {"org_id": org_id, "seconds": older_than_seconds},
    )
