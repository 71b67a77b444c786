"""Every SQL statement of the outbound webhooks (`commerce.webhook_endpoints`, `_deliveries`, `_attempts`).

An org's own statements run in its transaction. The delivery loop serves every org: `claim` (its own
transaction, `app.commerce_worker` on) takes due deliveries with `FOR UPDATE SKIP LOCKED` and leases
them for one attempt, so two replicas never send one delivery at once; `record` stores the attempt
and the delivery's next state in one transaction, and only while the lease is still the one claimed.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.runtime.sql import Sql


@dataclass(slots=True)
class EndpointRow:
    org_id: UUID
    url: str
    secret_sealed: bytes
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class DueDelivery:
    """A claimed delivery with what sending it needs: the endpoint's current URL and sealed secret."""

    id: UUID
    org_id: UUID
    event_type: str
    body: str
    attempts: int
    max_attempts: int
    claimed_until: datetime
    url: str | None
    secret_sealed: bytes | None


@dataclass(slots=True)
class DeliveryRow:
    id: UUID
    event_type: str
    order_id: str | None
    checkout_session_id: str | None
    url: str
    state: str
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


@dataclass(slots=True)
class AttemptRow:
    delivery_id: UUID
    attempt: int
    started_at: datetime
    duration_ms: int
    status: int | None
    error: str | None


_UPSERT_ENDPOINT = sa.text("""
    INSERT INTO commerce.webhook_endpoints (org_id, url, secret_sealed, created_by)
    VALUES (:org_id, :url, :secret_sealed, :created_by)
    ON CONFLICT (org_id) DO UPDATE SET url = excluded.url, secret_sealed = excluded.secret_sealed,
                                       updated_at = clock_timestamp()
    RETURNING org_id, url, secret_sealed, created_at, updated_at
""")
_GET_ENDPOINT = Sql("SELECT org_id, url, secret_sealed, created_at, updated_at FROM commerce.webhook_endpoints"
                    " WHERE org_id = $1")
# Every order queues its announcement: the endpoint's lookup and the delivery's insert in one round trip on the driver
# (shared/runtime/sql.py), which inserts nothing when the org has no endpoint.
_QUEUE_DELIVERY = Sql("""
    INSERT INTO commerce.webhook_deliveries (id, org_id, event_type, order_id, checkout_session_id, url, body, state,
                                             max_attempts)
    SELECT $1, org_id, $3, $4, $5, url, $6, 'pending', $7 FROM commerce.webhook_endpoints WHERE org_id = $2
""")
_AS_WORKER = sa.text("SELECT set_config('app.commerce_worker', 'on', true)")
_CLAIM = sa.text("""
    WITH due AS (
        SELECT id FROM commerce.webhook_deliveries
         WHERE state = 'pending' AND next_attempt_at <= clock_timestamp()
           AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
         ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    UPDATE commerce.webhook_deliveries d SET claimed_until = clock_timestamp() + make_interval(secs => :lease)
      FROM due WHERE d.id = due.id
    RETURNING d.id, d.org_id, d.event_type, d.body, d.attempts, d.max_attempts, d.claimed_until,
              (SELECT e.url FROM commerce.webhook_endpoints e WHERE e.org_id = d.org_id),
              (SELECT e.secret_sealed FROM commerce.webhook_endpoints e WHERE e.org_id = d.org_id)
""")
_NEXT_STATE = sa.text("""
    UPDATE commerce.webhook_deliveries
       SET attempts = attempts + 1, state = :state, last_status = :status, last_error = :error, claimed_until = NULL,
           next_attempt_at = clock_timestamp() + make_interval(secs => :delay),
           delivered_at = CASE WHEN :state = 'delivered' THEN clock_timestamp() END
     WHERE id = :id AND claimed_until = :claimed_until
    RETURNING attempts
""")
_INSERT_ATTEMPT = sa.text("""
    INSERT INTO commerce.webhook_attempts (delivery_id, attempt, org_id, started_at, duration_ms, status, error)
    VALUES (:delivery_id, :attempt, :org_id, :started_at, :duration_ms, :status, :error)
""")
_DELIVERIES = sa.text("""
    SELECT id, event_type, order_id, checkout_session_id, url, state, next_attempt_at, created_at, delivered_at
      FROM commerce.webhook_deliveries
     WHERE org_id = :org_id AND (CAST(:state AS text) IS NULL OR state = :state)
       AND (CAST(:order_id AS text) IS NULL OR order_id = :order_id)
     ORDER BY id DESC LIMIT :limit
""")
_ATTEMPTS = sa.text("""
    SELECT delivery_id, attempt, started_at, duration_ms, status, error FROM commerce.webhook_attempts
     WHERE org_id = :org_id AND delivery_id = ANY(:ids) ORDER BY delivery_id, attempt
""")


async def upsert_endpoint(session: AsyncConnection, org_id: UUID, url: str, secret_sealed: bytes,
                          created_by: UUID) -> EndpointRow:
    values = {"org_id": org_id, "url": url, "secret_sealed": secret_sealed, "created_by": created_by}
    return EndpointRow(*(await session.execute(_UPSERT_ENDPOINT, values)).one())


async def get_endpoint(session: AsyncConnection, org_id: UUID) -> EndpointRow | None:
    row = await _GET_ENDPOINT.fetchrow(session, org_id)
    return EndpointRow(*row) if row else None


async def queue_delivery(session: AsyncConnection, *, id: UUID, org_id: UUID, event_type: str, order_id: str | None,
                         checkout_session_id: str | None, body: str, max_attempts: int) -> bool:
    """A pending delivery of `body` to the org's endpoint (its URL now); False, nothing queued, when it has none."""
    return await _QUEUE_DELIVERY.execute(session, id, org_id, event_type, order_id, checkout_session_id, body,
                                         max_attempts) == 1


async def claim(session: AsyncConnection, *, limit: int, lease: float) -> list[DueDelivery]:
    """Due deliveries of every org, leased to this replica for `lease` seconds."""
    await session.execute(_AS_WORKER)
    rows = await session.execute(_CLAIM, {"limit": limit, "lease": lease})
    return [DueDelivery(*row) for row in rows]


async def record(session: AsyncConnection, delivery: DueDelivery, *, state: str, started_at: datetime,
                 duration_ms: int, status: int | None, error: str | None, delay: float) -> bool:
    """Store one attempt and the delivery's next state; False (nothing stored) if the lease was lost meanwhile."""
    await session.execute(_AS_WORKER)
    updated = (await session.execute(_NEXT_STATE, {
        "id": delivery.id, "claimed_until": delivery.claimed_until, "state": state, "status": status,
        "error": error, "delay": delay})).first()
    if updated is None:
        return False
    await session.execute(_INSERT_ATTEMPT, {
        "delivery_id": delivery.id, "attempt": updated[0], "org_id": delivery.org_id, "started_at": started_at,
        "duration_ms": duration_ms, "status": status, "error": error})
    return True


async def deliveries(session: AsyncConnection, org_id: UUID, *, state: str | None, order_id: str | None,
                     limit: int) -> list[tuple[DeliveryRow, list[AttemptRow]]]:
    """The org's deliveries, newest first, each with its attempts in order."""
    found = [DeliveryRow(*row) for row in await session.execute(
        _DELIVERIES, {"org_id": org_id, "state": state, "order_id": order_id, "limit": limit})]
    attempts: dict[UUID, list[AttemptRow]] = {row.id: [] for row in found}
    if found:
        for row in await session.execute(_ATTEMPTS, {"org_id": org_id, "ids": list(attempts)}):
            attempts[row[0]].append(AttemptRow(*row))
    return [(row, attempts[row.id]) for row in found]
