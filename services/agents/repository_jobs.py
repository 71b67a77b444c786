"""Every SQL statement of the job queue (`agents.jobs`).

A caller's statements run in its org's transaction and filter on its org (RLS backs them up). A
worker's statements serve every org of its queues: `as_worker` opens that transaction's view, and
only the claim, the lease and the outcome statements below use it. A claim takes due jobs with
`FOR UPDATE SKIP LOCKED` in one statement, so two workers never take one job; every later worker
statement names the worker (`claimed_by`), so a worker that lost its job (cancelled, or its lease
taken over) changes nothing.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models_jobs import JobRow, jobs

CHANNEL = "agents_jobs"
"""The NOTIFY channel: its payload is the queue of a job that became due or was scheduled."""
_ACTIVE = ("claimed", "running")


@dataclass(slots=True)
class NewJob:
    id: UUID
    org_id: UUID
    queue: str
    kind: str
    payload: dict[str, Any]
    priority: int
    run_at: datetime | None
    max_attempts: int
    idempotency_key: str | None
    enqueued_by: UUID


@dataclass(slots=True)
class Outcome:
    """How an attempt ended: `completed`, `failed` (retried `delay` seconds from now), `dead`, or `pending`
    (released by a worker that stopped: the attempt is not counted)."""

    job_id: UUID
    state: str
    result: dict[str, Any] | None = None
    error: str | None = None
    delay: float = 0.0


def _rows(result: Any) -> list[JobRow]:
    return [JobRow(*row) for row in result]


_INSERT = sa.text("""
    INSERT INTO agents.jobs (id, org_id, queue, kind, payload, priority, state, run_at, max_attempts, idempotency_key,
                             enqueued_by)
    VALUES (:id, :org_id, :queue, :kind, CAST(:payload AS jsonb), :priority, 'pending',
            coalesce(:run_at, clock_timestamp()), :max_attempts, :idempotency_key, :enqueued_by)
    ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
""").columns(*jobs.columns)


async def insert(session: AsyncConnection, job: NewJob) -> JobRow | None:
    """The new job; None when the org has a job with its idempotency key already."""
    values = {name: getattr(job, name) for name in NewJob.__slots__}
    values["payload"] = json.dumps(job.payload)
    found = _rows(await session.execute(_INSERT, values))
    return found[0] if found else None


async def notify(session: AsyncConnection, queue: str) -> None:
    """Wake every replica's dispatcher when this transaction commits (it looks for its next due job)."""
    await session.execute(sa.text("SELECT pg_notify(:channel, :queue)"), {"channel": CHANNEL, "queue": queue})


async def get(session: AsyncConnection, org_id: UUID, job_id: UUID, *, for_update: bool = False) -> JobRow | None:
    statement = sa.select(jobs).where(jobs.c.org_id == org_id, jobs.c.id == job_id)
    if for_update:
        statement = statement.with_for_update()
    found = _rows(await session.execute(statement))
    return found[0] if found else None


async def by_idempotency_key(session: AsyncConnection, org_id: UUID, key: str) -> JobRow | None:
    statement = sa.select(jobs).where(jobs.c.org_id == org_id, jobs.c.idempotency_key == key)
    found = _rows(await session.execute(statement))
    return found[0] if found else None


async def page(session: AsyncConnection, org_id: UUID, *, states: Sequence[str], kind: str | None, queue: str | None,
               cursor: UUID | None, limit: int) -> list[JobRow]:
    """The org's jobs, newest first (ids are UUIDv7), after `cursor`."""
    statement = sa.select(jobs).where(jobs.c.org_id == org_id)
    if states:
        statement = statement.where(jobs.c.state.in_(list(states)))
    if kind:
        statement = statement.where(jobs.c.kind == kind)
    if queue:
        statement = statement.where(jobs.c.queue == queue)
    if cursor:
        statement = statement.where(jobs.c.id < cursor)
    return _rows(await session.execute(statement.order_by(jobs.c.id.desc()).limit(limit)))


async def cancel(session: AsyncConnection, org_id: UUID, job_id: UUID) -> JobRow:
    """Cancelled; a worker that holds it loses it (its outcome is dropped, its heartbeat stops the run)."""
    statement = jobs.update().where(jobs.c.org_id == org_id, jobs.c.id == job_id).values(
        state="cancelled", claimed_by=None, lease_until=None, finished_at=sa.func.clock_timestamp(),
        updated_at=sa.func.clock_timestamp()).returning(*jobs.columns)
    return _rows(await session.execute(statement))[0]


async def reschedule(session: AsyncConnection, org_id: UUID, job_id: UUID, run_at: datetime | None, *,
                     fresh_attempts: bool) -> JobRow:
    """Pending again at `run_at` (now if unset); `fresh_attempts` gives it all its attempts back."""
    values: dict[str, Any] = {
        "state": "pending", "run_at": run_at if run_at is not None else sa.func.clock_timestamp(),
        "finished_at": None, "updated_at": sa.func.clock_timestamp(),
    }
    if fresh_attempts:
        values["attempts"] = 0
    statement = jobs.update().where(jobs.c.org_id == org_id, jobs.c.id == job_id).values(**values).returning(
        *jobs.columns)
    return _rows(await session.execute(statement))[0]


async def delete_finished(session: AsyncConnection, org_id: UUID, older_than_days: int) -> int:
    """Forget the org's jobs that ended more than that many days ago (their idempotency keys with them)."""
    statement = jobs.delete().where(
        jobs.c.org_id == org_id, jobs.c.state.in_(("completed", "dead", "cancelled")),
        jobs.c.finished_at < sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, older_than_days))
    return (await session.execute(statement)).rowcount


# The worker's statements: every org of the worker's queues.

_AS_WORKER = sa.text("SELECT set_config('app.jobs_worker', 'on', true)")


async def as_worker(session: AsyncConnection) -> None:
    """This transaction sees and changes the jobs of every org (the queue's own work, never a caller's)."""
    await session.execute(_AS_WORKER)


_CLAIM = sa.text("""
    UPDATE agents.jobs j SET state = 'claimed', attempts = j.attempts + 1, claimed_by = :worker,
        lease_until = clock_timestamp() + make_interval(secs => :lease), updated_at = clock_timestamp()
    FROM (SELECT id FROM agents.jobs
          WHERE queue = ANY(:queues) AND state IN ('pending', 'failed') AND run_at <= clock_timestamp()
          ORDER BY priority DESC, run_at, id LIMIT :limit FOR UPDATE SKIP LOCKED) due
    WHERE j.id = due.id
    RETURNING j.*
""").columns(*jobs.columns)


async def claim(session: AsyncConnection, queues: Sequence[str], worker: str, limit: int, lease: float) -> list[JobRow]:
    """Up to `limit` due jobs, highest priority first, now `claimed` by `worker` until its lease passes."""
    claimed = _rows(await session.execute(_CLAIM, {"queues": list(queues), "worker": worker, "limit": limit,
                                                   "lease": lease}))
    return sorted(claimed, key=lambda row: (-row.priority, row.run_at, row.id))


_START = sa.text("""
    UPDATE agents.jobs SET state = 'running', started_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = ANY(:ids) AND claimed_by = :worker AND state = 'claimed'
    RETURNING id
""")


async def start(session: AsyncConnection, job_ids: Sequence[UUID], worker: str) -> set[UUID]:
    """`running`: the ids the worker still holds."""
    return set((await session.execute(_START, {"ids": list(job_ids), "worker": worker})).scalars())


_EXTEND = sa.text("""
    UPDATE agents.jobs SET lease_until = clock_timestamp() + make_interval(secs => :lease)
    WHERE id = ANY(:ids) AND claimed_by = :worker AND state IN ('claimed', 'running')
    RETURNING id
""")


async def extend_leases(session: AsyncConnection, job_ids: Sequence[UUID], worker: str, lease: float) -> set[UUID]:
    """The heartbeat: the ids whose lease was extended, i.e. that the worker still holds."""
    return set((await session.execute(_EXTEND, {"ids": list(job_ids), "worker": worker, "lease": lease})).scalars())


_END = """
    UPDATE agents.jobs j SET state = o.state, result = CAST(o.result AS jsonb), last_error = o.error,
        run_at = CASE WHEN o.state IN ('failed', 'pending') THEN clock_timestamp() + make_interval(secs => o.delay)
                      ELSE j.run_at END,
        attempts = j.attempts - CASE WHEN o.state = 'pending' THEN 1 ELSE 0 END,
        finished_at = CASE WHEN o.state IN ('failed', 'pending') THEN NULL ELSE clock_timestamp() END,
        claimed_by = NULL, lease_until = NULL, updated_at = clock_timestamp()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:states AS text[]), CAST(:results AS text[]), CAST(:errors AS text[]),
                CAST(:delays AS float8[])) AS o(id, state, result, error, delay)
    WHERE j.id = o.id AND j.state IN ('claimed', 'running') AND {holder}
    RETURNING j.*
"""
_FINISH = sa.text(_END.format(holder="j.claimed_by = :worker")).columns(*jobs.columns)
_EXPIRE = sa.text(_END.format(holder="j.lease_until < clock_timestamp()")).columns(*jobs.columns)


def _outcome_columns(outcomes: Sequence[Outcome]) -> dict[str, list[Any]]:
    return {
        "ids": [o.job_id for o in outcomes], "states": [o.state for o in outcomes],
        "results": [None if o.result is None else json.dumps(o.result) for o in outcomes],
        "errors": [o.error for o in outcomes], "delays": [o.delay for o in outcomes],
    }


async def finish(session: AsyncConnection, outcomes: Sequence[Outcome], worker: str) -> list[JobRow]:
    """Record the attempts' outcomes; the rows changed (a job the worker no longer holds keeps its state)."""
    return _rows(await session.execute(_FINISH, {**_outcome_columns(outcomes), "worker": worker}))


_EXPIRED = sa.text("""
    SELECT * FROM agents.jobs WHERE queue = ANY(:queues) AND state IN ('claimed', 'running')
        AND lease_until < clock_timestamp()
    ORDER BY lease_until LIMIT :limit FOR UPDATE SKIP LOCKED
""").columns(*jobs.columns)


async def expired(session: AsyncConnection, queues: Sequence[str], limit: int = 100) -> list[JobRow]:
    """Jobs of these queues whose worker stopped renewing its lease (it died or lost the database), locked."""
    return _rows(await session.execute(_EXPIRED, {"queues": list(queues), "limit": limit}))


async def end_expired(session: AsyncConnection, outcomes: Sequence[Outcome]) -> list[JobRow]:
    """Record the outcome of attempts whose lease passed (rows locked by `expired` in this transaction)."""
    return _rows(await session.execute(_EXPIRE, _outcome_columns(outcomes)))


_NEXT = sa.text("""
    SELECT extract(epoch FROM least(
        (SELECT min(run_at) FROM agents.jobs WHERE queue = ANY(:queues) AND state IN ('pending', 'failed')),
        (SELECT min(lease_until) FROM agents.jobs WHERE queue = ANY(:queues) AND state IN ('claimed', 'running'))
    ) - clock_timestamp())
""")


async def seconds_to_next(session: AsyncConnection, queues: Sequence[str]) -> float | None:
    """Until the next job of these queues comes due or the next lease passes (≤ 0: now); None when neither waits."""
    found = (await session.execute(_NEXT, {"queues": list(queues)})).scalar_one()
    return None if found is None else float(found)
