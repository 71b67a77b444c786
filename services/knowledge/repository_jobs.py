"""The SQL of the ingestion queue (`knowledge.ingest_jobs`, no RLS: workers serve every org) and of
each thing's ingestion state (`knowledge.ingest_state`, org-scoped with RLS).

Debounce: a change to a thing that already has a queued job moves that job's `not_before` to
now + debounce instead of adding a job, but never past `debounce x 10` after the job was first
queued, so a thing that changes all the time is still ingested. The latest action wins (a delete
after an update purges; an update after a delete ingests again), `force` and `vector_only` stick
(a later event never cancels a queued request for privacy), `store_text` holds only if no
merged request asked for `vector_only` (privacy wins a tie), and the fields of both are merged
(NULL = every field).

One job per thing at a time: a queued job is not claimed while another job of the same thing is
running, so an older, slower run can never commit after a newer one.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.knowledge.models import ingest_jobs, ingest_state as state_table
from shared.kernel.ids import uuid7

Row = sa.Row[Any]

_ENQUEUE = sa.text("""
    INSERT INTO knowledge.ingest_jobs (id, org_id, thing_id, action, fields, force, vector_only, store_text, trigger,
                                       actor_id, status, not_before)
    SELECT id, org_id, thing_id, action, CASE WHEN fields = '{}' THEN NULL ELSE CAST(fields AS text[]) END, force, vector_only,
           store_text AND NOT vector_only, trigger, actor_id, 'queued',
           clock_timestamp() + make_interval(secs => delay_ms / 1000.0)
    FROM unnest(CAST(:id AS uuid[]), CAST(:org_id AS uuid[]), CAST(:thing_id AS uuid[]), CAST(:action AS text[]),
                CAST(:fields AS text[]), CAST(:force AS boolean[]), CAST(:vector_only AS boolean[]),
                CAST(:store_text AS boolean[]), CAST(:trigger AS text[]), CAST(:actor_id AS uuid[]),
                CAST(:delay_ms AS integer[]))
        AS t(id, org_id, thing_id, action, fields, force, vector_only, store_text, trigger, actor_id, delay_ms)
    ON CONFLICT (org_id, thing_id) WHERE status = 'queued' DO UPDATE SET
        action = EXCLUDED.action,
        fields = CASE WHEN ingest_jobs.fields IS NULL OR EXCLUDED.fields IS NULL THEN NULL
                      ELSE ARRAY(SELECT DISTINCT f FROM unnest(ingest_jobs.fields || EXCLUDED.fields) f) END,
        force = ingest_jobs.force OR EXCLUDED.force,
        vector_only = ingest_jobs.vector_only OR EXCLUDED.vector_only,
        store_text = (ingest_jobs.store_text OR EXCLUDED.store_text)
                     AND NOT (ingest_jobs.vector_only OR EXCLUDED.vector_only),
        trigger = EXCLUDED.trigger,
        actor_id = EXCLUDED.actor_id,
        not_before = LEAST(EXCLUDED.not_before,
                           ingest_jobs.created_at + (EXCLUDED.not_before - clock_timestamp()) * 10),
        updated_at = clock_timestamp()
    RETURNING *
""").columns(*ingest_jobs.columns)


async def enqueue(session: AsyncConnection, jobs: Sequence[dict[str, Any]]) -> list[Row]:
    """Queue (or debounce into the queued job) one job per dict; at most one per (org, thing) in a call."""
    if not jobs:
        return []
    columns = {name: [job.get(name) for job in jobs] for name in
               ("org_id", "thing_id", "action", "trigger", "actor_id", "delay_ms")}
    for flag in ("force", "vector_only", "store_text"):
        columns[flag] = [bool(job.get(flag)) for job in jobs]
    columns["id"] = [uuid7() for _ in jobs]
    columns["fields"] = ["{" + ",".join(job.get("fields") or []) + "}" for job in jobs]
    return list((await session.execute(_ENQUEUE, columns)).all())


_CLAIM = sa.text("""
    UPDATE knowledge.ingest_jobs SET status = 'running', attempts = attempts + 1, updated_at = clock_timestamp()
    WHERE id = (SELECT q.id FROM knowledge.ingest_jobs q
                WHERE q.status = 'queued' AND q.not_before <= clock_timestamp()
                  AND NOT EXISTS (SELECT 1 FROM knowledge.ingest_jobs r
                                  WHERE r.org_id = q.org_id AND r.thing_id = q.thing_id AND r.status = 'running')
                ORDER BY q.not_before LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING *
""").columns(*ingest_jobs.columns)


async def claim(session: AsyncConnection) -> Row | None:
    """The next due job, now `running` (another worker skips it). A thing with a running job has none
    claimed until that one ends: there is only one queued job per thing, and the running one is
    finished (or requeued) before its successor can start. A new job is only ever claimable once the
    previous claim has committed, so two workers cannot both take a thing."""
    return (await session.execute(_CLAIM)).first()


async def finish(session: AsyncConnection, job_id: UUID, status: str, *, chunks: int | None = None,
                 error: str | None = None) -> None:
    await session.execute(sa.update(ingest_jobs).where(ingest_jobs.c.id == job_id).values(
        status=status, chunks=chunks, error=error, updated_at=sa.func.clock_timestamp(),
        finished_at=sa.func.clock_timestamp()))


async def retry_later(session: AsyncConnection, job: Row, delay_seconds: float, error: str) -> str:
    """Back to the queue after a transient failure, unless a newer change queued the thing again
    meanwhile: that job will do the work, so this one ends `skipped`."""
    newer = await session.execute(sa.select(ingest_jobs.c.id).where(
        ingest_jobs.c.org_id == job.org_id, ingest_jobs.c.thing_id == job.thing_id, ingest_jobs.c.status == "queued"))
    if newer.first() is not None:
        await finish(session, job.id, "skipped", error=f"superseded after: {error}")
        return "skipped"
    await session.execute(sa.update(ingest_jobs).where(ingest_jobs.c.id == job.id).values(
        status="queued", error=error, updated_at=sa.func.clock_timestamp(),
        not_before=sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, delay_seconds)))
    return "queued"


async def requeue_stale(session: AsyncConnection, lease_seconds: float) -> int:
    """Jobs left `running` by a replica that died: queued again (their work is idempotent), or, when a
    newer job of the thing is queued already, ended `skipped` (the queued one does the work, and a
    running job left behind would keep it from ever being claimed)."""
    statement = sa.text("""
        WITH stale AS (
            SELECT s.id, row_number() OVER (PARTITION BY s.org_id, s.thing_id ORDER BY s.created_at DESC) = 1
                         AND NOT EXISTS (SELECT 1 FROM knowledge.ingest_jobs q WHERE q.org_id = s.org_id
                                         AND q.thing_id = s.thing_id AND q.status = 'queued') AS requeue
            FROM knowledge.ingest_jobs s
            WHERE s.status = 'running' AND s.updated_at < clock_timestamp() - make_interval(secs => :lease)
        )
        UPDATE knowledge.ingest_jobs j SET
            status = CASE WHEN stale.requeue THEN 'queued' ELSE 'skipped' END,
            error = CASE WHEN stale.requeue THEN j.error ELSE 'lease expired; superseded by a newer job' END,
            finished_at = CASE WHEN stale.requeue THEN NULL ELSE clock_timestamp() END,
            updated_at = clock_timestamp()
        FROM stale WHERE stale.id = j.id
    """)
    return (await session.execute(statement, {"lease": lease_seconds})).rowcount


async def ingest_state(session: AsyncConnection, org_id: UUID, thing_id: UUID) -> Row | None:
    """How ingestion last wrote the thing (privacy mode, thing version), if it ever did."""
    statement = sa.select(state_table).where(state_table.c.org_id == org_id, state_table.c.thing_id == thing_id)
    return (await session.execute(statement)).first()


_LOCK_STATE = sa.text("""
    INSERT INTO knowledge.ingest_state (org_id, thing_id) VALUES (:org_id, :thing_id)
    ON CONFLICT (org_id, thing_id) DO UPDATE SET org_id = EXCLUDED.org_id
    RETURNING *
""").columns(*state_table.columns)


async def lock_ingest_state(session: AsyncConnection, org_id: UUID, thing_id: UUID) -> Row:
    """The thing's ingestion state, locked until the transaction ends: one writer per thing at a time
    (a thing that was never ingested has its row created, so there is always a row to lock)."""
    return (await session.execute(_LOCK_STATE, {"org_id": org_id, "thing_id": thing_id})).one()


async def save_ingest_state(session: AsyncConnection, org_id: UUID, thing_id: UUID, *, vector_only: bool,
                            thing_version: int) -> None:
    """Remember the privacy mode and the newest thing version ingested (never moving the version back)."""
    await session.execute(sa.text("""
        INSERT INTO knowledge.ingest_state (org_id, thing_id, vector_only, thing_version)
        VALUES (:org_id, :thing_id, :vector_only, :version)
        ON CONFLICT (org_id, thing_id) DO UPDATE SET
            vector_only = EXCLUDED.vector_only,
            thing_version = GREATEST(ingest_state.thing_version, EXCLUDED.thing_version),
            updated_at = clock_timestamp()
    """), {"org_id": org_id, "thing_id": thing_id, "vector_only": vector_only, "version": thing_version})


async def jobs_for(session: AsyncConnection, org_id: UUID, *, job_ids: Sequence[UUID], thing_id: UUID | None,
                   limit: int) -> list[Row]:
    statement = sa.select(ingest_jobs).where(ingest_jobs.c.org_id == org_id)
    if job_ids:
        statement = statement.where(ingest_jobs.c.id.in_(list(job_ids)))
    if thing_id:
        statement = statement.where(ingest_jobs.c.thing_id == thing_id)
    return list((await session.execute(statement.order_by(ingest_jobs.c.created_at.desc()).limit(limit))).all())


async def counts(session: AsyncConnection, org_id: UUID) -> dict[str, int]:
    statement = sa.select(ingest_jobs.c.status, sa.func.count()).where(ingest_jobs.c.org_id == org_id).group_by(
        ingest_jobs.c.status)
    found = {status: 0 for status in ("queued", "running", "done", "skipped", "failed")}
    found |= {status: int(n) for status, n in (await session.execute(statement)).all()}
    return found


async def recent_orgs(session: AsyncConnection, hours: float) -> list[UUID]:
    """Orgs whose knowledge changed lately through ingestion: the ones garbage collection visits."""
    statement = sa.text("""SELECT DISTINCT org_id FROM knowledge.ingest_jobs
                           WHERE updated_at > clock_timestamp() - make_interval(secs => :seconds)""")
    return list((await session.execute(statement, {"seconds": hours * 3600})).scalars())
