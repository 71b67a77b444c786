"""The SQL of the ingestion queue (`knowledge.ingest_jobs`, no RLS: workers serve every org).

Debounce: a change to a thing that already has a queued job moves that job's `not_before` to
now + debounce instead of adding a job, but never past `debounce x 10` after the job was first
queued, so a thing that changes all the time is still ingested. The latest action wins (a delete
after an update purges; an update after a delete ingests again), `force` sticks, and the fields
of both are merged (NULL = every field).
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.knowledge.models import ingest_jobs
from shared.ids import uuid7

Row = sa.Row[Any]

_ENQUEUE = sa.text("""
    INSERT INTO knowledge.ingest_jobs (id, org_id, thing_id, action, fields, force, vector_only, trigger, actor_id,
                                       status, not_before)
    SELECT id, org_id, thing_id, action, CASE WHEN fields = '{}' THEN NULL ELSE CAST(fields AS text[]) END, force, vector_only,
           trigger, actor_id, 'queued', clock_timestamp() + make_interval(secs => delay_ms / 1000.0)
    FROM unnest(CAST(:id AS uuid[]), CAST(:org_id AS uuid[]), CAST(:thing_id AS uuid[]), CAST(:action AS text[]),
                CAST(:fields AS text[]), CAST(:force AS boolean[]), CAST(:vector_only AS boolean[]),
                CAST(:trigger AS text[]), CAST(:actor_id AS uuid[]), CAST(:delay_ms AS integer[]))
        AS t(id, org_id, thing_id, action, fields, force, vector_only, trigger, actor_id, delay_ms)
    ON CONFLICT (org_id, thing_id) WHERE status = 'queued' DO UPDATE SET
        action = EXCLUDED.action,
        fields = CASE WHEN ingest_jobs.fields IS NULL OR EXCLUDED.fields IS NULL THEN NULL
                      ELSE ARRAY(SELECT DISTINCT f FROM unnest(ingest_jobs.fields || EXCLUDED.fields) f) END,
        force = ingest_jobs.force OR EXCLUDED.force,
        vector_only = EXCLUDED.vector_only,
        trigger = EXCLUDED.trigger,
        actor_id = EXCLUDED.actor_id,
        not_before = LEAST(EXCLUDED.not_before,
                           ingest_jobs.created_at + (EXCLUDED.not_before - clock_timestamp()) * 10),
        updated_at = clock_timestamp()
    RETURNING *
""").columns(*ingest_jobs.columns)


async def enqueue(session: AsyncSession, jobs: Sequence[dict[str, Any]]) -> list[Row]:
    """Queue (or debounce into the queued job) one job per dict; at most one per (org, thing) in a call."""
    if not jobs:
        return []
    columns = {name: [job.get(name) for job in jobs] for name in
               ("org_id", "thing_id", "action", "force", "vector_only", "trigger", "actor_id", "delay_ms")}
    columns["id"] = [uuid7() for _ in jobs]
    columns["fields"] = ["{" + ",".join(job.get("fields") or []) + "}" for job in jobs]
    return list((await session.execute(_ENQUEUE, columns)).all())


_CLAIM = sa.text("""
    UPDATE knowledge.ingest_jobs SET status = 'running', attempts = attempts + 1, updated_at = clock_timestamp()
    WHERE id = (SELECT id FROM knowledge.ingest_jobs WHERE status = 'queued' AND not_before <= clock_timestamp()
                ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING *
""").columns(*ingest_jobs.columns)


async def claim(session: AsyncSession) -> Row | None:
    """The next due job, now `running` (another worker skips it)."""
    return (await session.execute(_CLAIM)).first()


async def finish(session: AsyncSession, job_id: UUID, status: str, *, chunks: int | None = None,
                 error: str | None = None) -> None:
    await session.execute(sa.update(ingest_jobs).where(ingest_jobs.c.id == job_id).values(
        status=status, chunks=chunks, error=error, updated_at=sa.func.clock_timestamp(),
        finished_at=sa.func.clock_timestamp()))


async def retry_later(session: AsyncSession, job: Row, delay_seconds: float, error: str) -> str:
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


async def requeue_stale(session: AsyncSession, lease_seconds: float) -> int:
    """Jobs left `running` by a replica that died: queued again (their work is idempotent)."""
    statement = sa.text("""
        UPDATE knowledge.ingest_jobs j SET status = 'queued', updated_at = clock_timestamp()
        WHERE status = 'running' AND updated_at < clock_timestamp() - make_interval(secs => :lease)
          AND NOT EXISTS (SELECT 1 FROM knowledge.ingest_jobs q
                          WHERE q.org_id = j.org_id AND q.thing_id = j.thing_id AND q.status = 'queued')
    """)
    return (await session.execute(statement, {"lease": lease_seconds})).rowcount


async def jobs_for(session: AsyncSession, org_id: UUID, *, job_ids: Sequence[UUID], thing_id: UUID | None,
                   limit: int) -> list[Row]:
    statement = sa.select(ingest_jobs).where(ingest_jobs.c.org_id == org_id)
    if job_ids:
        statement = statement.where(ingest_jobs.c.id.in_(list(job_ids)))
    if thing_id:
        statement = statement.where(ingest_jobs.c.thing_id == thing_id)
    return list((await session.execute(statement.order_by(ingest_jobs.c.created_at.desc()).limit(limit))).all())


async def counts(session: AsyncSession, org_id: UUID) -> dict[str, int]:
    statement = sa.select(ingest_jobs.c.status, sa.func.count()).where(ingest_jobs.c.org_id == org_id).group_by(
        ingest_jobs.c.status)
    found = {status: 0 for status in ("queued", "running", "done", "skipped", "failed")}
    found |= {status: int(n) for status, n in (await session.execute(statement)).all()}
    return found


async def recent_orgs(session: AsyncSession, hours: float) -> list[UUID]:
    """Orgs whose knowledge changed lately through ingestion: the ones garbage collection visits."""
    statement = sa.text("""SELECT DISTINCT org_id FROM knowledge.ingest_jobs
                           WHERE updated_at > clock_timestamp() - make_interval(secs => :seconds)""")
    return list((await session.execute(statement, {"seconds": hours * 3600})).scalars())
