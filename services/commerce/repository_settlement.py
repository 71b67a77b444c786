"""Every SQL statement of sale settlements (`commerce.checkout_settlements`; DDL in migrations/v0009).

`queue` runs in the pay transaction; `due` leases pending settlements of every org to one replica's loop
(`FOR UPDATE SKIP LOCKED`, as the webhook loop, with `app.commerce_worker`); `finish` ends a pending one
exactly once (the caller emits the payment event only when it did); `retry` puts it off with backoff.
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
_FINISH = Sql("UPDATE commerce.checkout_settlements SET state = 'done', claimed_until = NULL WHERE org_id = $1"
              " AND checkout_session_id = $2 AND state = 'pending'")
_SET_ORDER_PAYMENT = Sql("UPDATE commerce.orders SET payment_thing_id = $3 WHERE org_id = $1 AND id = $2"
                         " AND payment_thing_id IS NULL")


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


async def finish(session: AsyncConnection, org_id: UUID, session_id: str) -> bool:
    """End a pending settlement; False when it had already ended (another try finished it)."""
    return await _FINISH.execute(session, org_id, session_id) == 1


async def retry(session: AsyncConnection, org_id: UUID, session_id: str, delay: float) -> None:
    await session.execute(sa.text(
        "UPDATE commerce.checkout_settlements SET attempts = attempts + 1, claimed_until = NULL, "
        "next_attempt_at = clock_timestamp() + make_interval(secs => :delay) WHERE org_id = :org_id "
        "AND checkout_session_id = :session_id AND state = 'pending'"),
        {"org_id": org_id, "session_id": session_id, "delay": delay})


async def set_order_payment(session: AsyncConnection, org_id: UUID, order_id: str, payment_id: UUID) -> None:
    await _SET_ORDER_PAYMENT.execute(session, org_id, order_id, payment_id)
