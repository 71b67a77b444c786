"""Every SQL statement of sale settlements (`commerce.checkout_settlements`; DDL in migrations/v0009).

`queue` runs in the pay transaction; `due` leases pending settlements of every org to one replica's loop
(`FOR UPDATE SKIP LOCKED`, as the webhook loop, with `app.commerce_worker`); `finish` ends a pending one
exactly once, naming the order's payment thing (the caller emits the payment event only when it did); `retry`
puts it off with backoff.
"""

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.runtime.sql import Sql

_AS_WORKER = sa.text("SELECT set_config('app.commerce_worker', 'on', true)")


@dataclass(slots=True)
class Settlement:
    org_id: UUID
    checkout_session_id: str
    order_id: str
    actor_id: UUID
    payment_status: str
    details: dict[str, Any]
    attempts: int


_COLUMNS = "org_id, checkout_session_id, order_id, actor_id, payment_status, details, attempts"

# Every sale queues, finishes and names its payment: on the driver (shared/runtime/sql.py).
_QUEUE = Sql("""
    INSERT INTO commerce.checkout_settlements (org_id, checkout_session_id, order_id, actor_id, payment_status,
                                               details, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, clock_timestamp() + make_interval(secs => $7))
    ON CONFLICT DO NOTHING""")
# A settlement ends in one round trip (it was three): its session locked (a cancel runs wholly before or after it:
# a lock that waited sees the cancel's status), the settlement done if it was still pending, and only then the
# order's payment thing set.
_FINISH = Sql("""
    WITH locked AS (SELECT status FROM commerce.checkout_sessions WHERE org_id = $1 AND id = $2 FOR UPDATE),
         finished AS (UPDATE commerce.checkout_settlements SET state = 'done', claimed_until = NULL
                       WHERE org_id = $1 AND checkout_session_id = $2 AND state = 'pending' RETURNING order_id),
         paid AS (UPDATE commerce.orders o SET payment_thing_id = $3 FROM finished
                   WHERE o.org_id = $1 AND o.id = finished.order_id AND o.payment_thing_id IS NULL)
    SELECT (SELECT status FROM locked) AS status, EXISTS (SELECT FROM finished) AS finished""")


async def queue(session: AsyncConnection, settlement: Settlement, grace: float) -> None:
    """Pending, and left to the answering replica for `grace` seconds before a loop may take it."""
    await _QUEUE.execute(session, settlement.org_id, settlement.checkout_session_id, settlement.order_id,
                         settlement.actor_id, settlement.payment_status, json.dumps(settlement.details), float(grace))


async def pending(session: AsyncConnection, org_id: UUID, session_id: str) -> Settlement | None:
    row = (await session.execute(sa.text(
        f"SELECT {_COLUMNS} FROM commerce.checkout_settlements WHERE org_id = :org_id "
        "AND checkout_session_id = :session_id AND state = 'pending'"),
        {"org_id": org_id, "session_id": session_id})).first()
    return Settlement(*row) if row else None


async def due(session: AsyncConnection, *, limit: int, lease: float) -> list[Settlement]:
    """Pending settlements of every org whose time came, leased to this replica for `lease` seconds."""
    await session.execute(_AS_WORKER)
    rows = await session.execute(sa.text(f"""
        WITH due AS (
            SELECT org_id, checkout_session_id FROM commerce.checkout_settlements
             WHERE state = 'pending' AND next_attempt_at <= clock_timestamp()
               AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
             ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)
        UPDATE commerce.checkout_settlements s SET claimed_until = clock_timestamp() + make_interval(secs => :lease)
          FROM due WHERE s.org_id = due.org_id AND s.checkout_session_id = due.checkout_session_id
        RETURNING {', '.join('s.' + c.strip() for c in _COLUMNS.split(','))}"""), {"limit": limit, "lease": lease})
    return [Settlement(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Finish:
    session_status: str | None
    """The session's status, read under its lock (None: no such session)."""
    finished: bool
    """Whether this ended the settlement (False: another try had, and the order's payment was left as it was)."""


async def finish(session: AsyncConnection, org_id: UUID, session_id: str, payment_id: UUID) -> Finish:
    """Lock the session, end the settlement if it is pending and then name the order's payment thing."""
    row = await _FINISH.fetchrow(session, org_id, session_id, payment_id)
    assert row is not None
    return Finish(row["status"], row["finished"])


async def retry(session: AsyncConnection, org_id: UUID, session_id: str, delay: float) -> None:
    await session.execute(sa.text(
        "UPDATE commerce.checkout_settlements SET attempts = attempts + 1, claimed_until = NULL, "
        "next_attempt_at = clock_timestamp() + make_interval(secs => :delay) WHERE org_id = :org_id "
        "AND checkout_session_id = :session_id AND state = 'pending'"),
        {"org_id": org_id, "session_id": session_id, "delay": delay})

