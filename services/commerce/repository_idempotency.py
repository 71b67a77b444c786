"""Every SQL statement of ACP's idempotency records (`commerce.idempotency_keys`).

`claim` is one INSERT ... ON CONFLICT: of two requests racing with one key, the second waits for
the first's (short) transaction and then sees its row, so exactly one proceeds. The same statement
takes over a record that expired, or an in-flight one whose lease passed with the same body (its
gateway died mid-request), or one this very request claimed before (the same `lock_id`: a checkout
that claimed its key in an earlier transaction). Every later write names the `lock_id` it was given, so a request that
lost its record to a takeover changes nothing.
"""

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.runtime.outbox import Outbox, OutboxMessage
from shared.runtime.sql import NamedSql, Sql, named


@dataclass(slots=True, frozen=True)
class KeyScope:
    """Whose key on which endpoint: the record's primary key."""

    org_id: UUID
    caller: str
    endpoint: str
    key: str

    def primary(self) -> tuple[UUID, str, str, str]:
        return self.org_id, self.caller, self.endpoint, self.key


@dataclass(slots=True)
class IdempotencyRow:
    request_hash: str
    state: str
    lock_id: UUID
    locked_until: datetime
    status: int | None
    headers: dict[str, str] | None
    body: str | None
    now: datetime


_PK = "org_id = $1 AND caller = $2 AND endpoint = $3 AND key = $4"
"""A record's key, the first four parameters of the claim, the read and the release (`KeyScope.primary`); the
completion names them (`named`), as it may carry the step's events."""

# Every ACP request claims and completes its key: on the driver (shared/runtime/sql.py).
_CLAIM = Sql("""
    INSERT INTO commerce.idempotency_keys AS k (org_id, caller, endpoint, key, request_hash, state, lock_id,
                                                locked_until, expires_at)
    VALUES ($1, $2, $3, $4, $5, 'in_flight', $6,
            clock_timestamp() + make_interval(secs => $7), clock_timestamp() + make_interval(secs => $8))
    ON CONFLICT (org_id, caller, endpoint, key) DO UPDATE
       SET request_hash = excluded.request_hash, state = 'in_flight', lock_id = excluded.lock_id,
           locked_until = excluded.locked_until, status = NULL, headers = NULL, body = NULL,
           created_at = clock_timestamp(), expires_at = excluded.expires_at
     WHERE k.expires_at <= clock_timestamp()
        OR (k.state = 'in_flight' AND k.request_hash = excluded.request_hash
            AND (k.locked_until <= clock_timestamp() OR k.lock_id = excluded.lock_id))
    RETURNING lock_id
""")

_GET = Sql(f"""
    SELECT request_hash, state, lock_id, locked_until, status, headers, body, clock_timestamp()
      FROM commerce.idempotency_keys WHERE {_PK}
""")

_COMPLETE_TEXT = """
    UPDATE commerce.idempotency_keys
       SET state = 'completed', status = :status, headers = CAST(:headers AS jsonb), body = :body,
           locked_until = clock_timestamp()
     WHERE org_id = :org_id AND caller = :caller AND endpoint = :endpoint AND key = :key AND lock_id = :lock_id
       AND state = 'in_flight'
"""
_COMPLETE = named(_COMPLETE_TEXT)


@functools.lru_cache(maxsize=8)
def _complete_staging(insert_select: str) -> NamedSql:
    """The completion with the step's events staged in the same round trip (`Outbox.insert_select`): an answer is
    the last thing a step writes, and its events go with it."""
    return named(f"WITH staged AS ({insert_select}) {_COMPLETE_TEXT}")

_RELEASE = Sql(f"DELETE FROM commerce.idempotency_keys WHERE {_PK} AND lock_id = $5 AND state = 'in_flight'")

_AS_WORKER = sa.text("SELECT set_config('app.commerce_worker', 'on', true)")

_SWEEP = sa.text("""
    DELETE FROM commerce.idempotency_keys WHERE ctid IN (
        SELECT ctid FROM commerce.idempotency_keys WHERE expires_at <= clock_timestamp() LIMIT :limit)
""")


async def claim(session: AsyncConnection, scope: KeyScope, *, request_hash: str, lock_id: UUID, lease: float,
                ttl: float) -> bool:
    """True when this request now holds the key (new, expired, or an abandoned one with the same body)."""
    return await _CLAIM.fetchrow(session, *scope.primary(), request_hash, lock_id, float(lease), float(ttl)) is not None


async def get(session: AsyncConnection, scope: KeyScope) -> IdempotencyRow | None:
    row = await _GET.fetchrow(session, *scope.primary())
    return IdempotencyRow(*row) if row else None


async def complete(session: AsyncConnection, scope: KeyScope, lock_id: UUID, *, status: int, headers: dict[str, str],
                   body: str, outbox: Outbox | None = None, staged: Sequence[OutboxMessage] = ()) -> bool:
    """Store the answer under the key this request holds (False: it lost the key to a takeover); `staged`: events
    of the step, staged in `outbox` by the same statement whatever the answer's fate, as they would be alone."""
    org_id, caller, endpoint, key = scope.primary()
    params = {"org_id": org_id, "caller": caller, "endpoint": endpoint, "key": key, "lock_id": lock_id,
              "status": status, "headers": json.dumps(headers), "body": body}
    if not staged:
        return await _COMPLETE.execute(session, params) == 1
    assert outbox is not None
    return await _complete_staging(outbox.insert_select).execute(session, {**params, **outbox.rows_of(staged)}) == 1


async def release(session: AsyncConnection, scope: KeyScope, lock_id: UUID) -> bool:
    return await _RELEASE.execute(session, *scope.primary(), lock_id) == 1


async def sweep_expired(session: AsyncConnection, limit: int = 1000) -> int:
    """Delete up to `limit` expired records of every org (the service's sweeper; its own transaction)."""
    await session.execute(_AS_WORKER)
    return (await session.execute(_SWEEP, {"limit": limit})).rowcount or 0  # type: ignore[attr-defined]
