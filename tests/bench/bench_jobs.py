"""agents.jobs.rate: jobs claimed, run (a no-op handler) and completed per second by two of our workers,
beside two raw `FOR UPDATE SKIP LOCKED` loops on the same table in the same run.

Ours: two `JobWorker`s of one agents replica (its database pool, outbox and relay), `SLOTS` slots each:
batch claims, the `running` mark, the lease heartbeat, group-committed outcomes with one `task_event`
each. Raw: two asyncpg connections, each claiming one job (`claimed`, with a lease) and then marking it
`completed`: two statements a job, the least a worker does that does not lose a job when it dies.
Rounds alternate (raw, ours, ours, raw, ...) over fresh jobs of their own queue; the best round of
each side counts. Target: ours ≥ 0.5x raw.
"""

import asyncio
import time
from typing import Any
from uuid import UUID

import asyncpg

from tests.bench.harness import Figure

PREFIX = "agents.jobs"
JOBS = 3000
ROUNDS = 4
SLOTS = 8
SAMPLE_RATIO = 0.0

_FILL = """
    INSERT INTO agents.jobs (id, org_id, queue, kind, payload, priority, state, run_at, max_attempts, enqueued_by)
    SELECT gen_random_uuid(), $1, $2, 'bench.noop', '{}', 0, 'pending', clock_timestamp(), 3, $3
    FROM generate_series(1, $4)
"""
_RAW_CLAIM = """
    UPDATE agents.jobs j SET state = 'claimed', attempts = j.attempts + 1, claimed_by = $2,
        lease_until = clock_timestamp() + interval '30 seconds', updated_at = clock_timestamp()
    FROM (SELECT id FROM agents.jobs WHERE queue = $1 AND state IN ('pending', 'failed') AND run_at <= clock_timestamp()
          ORDER BY priority DESC, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) due
    WHERE j.id = due.id RETURNING j.id
"""
_RAW_COMPLETE = """
    UPDATE agents.jobs SET state = 'completed', result = '{}', claimed_by = NULL, lease_until = NULL,
        finished_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1 AND claimed_by = $2
"""


async def _fill(admin: asyncpg.Connection, org_id: UUID, actor_id: UUID, queue: str) -> None:
    await admin.execute("SELECT set_config('app.jobs_worker', 'on', false)")
    await admin.execute(_FILL, org_id, queue, actor_id, JOBS)
    await admin.execute("ANALYZE agents.jobs")


async def _raw(pool: asyncpg.Pool, queue: str) -> float:
    async def loop(name: str) -> None:
        async with pool.acquire() as conn:
            await conn.execute("SELECT set_config('app.jobs_worker', 'on', false)")
            while (job_id := await conn.fetchval(_RAW_CLAIM, queue, name)) is not None:
                await conn.execute(_RAW_COMPLETE, job_id, name)

    started = time.perf_counter()
    await asyncio.gather(loop("raw-1"), loop("raw-2"))
    return JOBS / (time.perf_counter() - started)


async def _ours(runtime: Any, queue: str) -> float:
    from services.agents.worker import JobWorker, WorkerPolicy

    async def noop(_: Any, __: Any) -> None:
        return None

    policy = WorkerPolicy(queues=(queue,), slots=SLOTS)
    workers = [JobWorker(runtime, {"bench.noop": noop}, policy, name=f"ours-{i}") for i in range(2)]
    started = time.perf_counter()
    for worker in workers:
        await worker.start()
    while sum(w.completed for w in workers) < JOBS:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    for worker in workers:
        await worker.stop()
    return JOBS / elapsed


async def run(nats_url: str, db_url: str) -> list[Figure]:
    from services.agents.app import definition
    from shared.kernel.ids import uuid7
    from shared.runtime.db import app_url, plain_url
    from shared.runtime.service import ServiceRuntime
    from tests.bench.rr_processes import settings_for, tracing

    common = settings_for(nats_url, db_url, SAMPLE_RATIO)
    tracing("bench-jobs", common)
    runtime = ServiceRuntime(definition, definition.settings(**common.model_dump(), agents_jobs_slots=0))
    await runtime.start(migrate=False)
    admin = await asyncpg.connect(plain_url(db_url))
    pool = await asyncpg.create_pool(plain_url(app_url(common)), min_size=2, max_size=2)
    org_id, actor_id = uuid7(), uuid7()
    rates: dict[str, list[float]] = {"raw": [], "ours": []}
    try:
        for r in range(ROUNDS):
            for side in (("raw", "ours") if r % 2 == 0 else ("ours", "raw")):
                queue = f"bench-{side}-{r}"
                await _fill(admin, org_id, actor_id, queue)
                rates[side].append(await (_raw(pool, queue) if side == "raw" else _ours(runtime, queue)))
        left = await admin.fetchval("SELECT count(*) FROM agents.jobs WHERE org_id = $1 AND state <> 'completed'",
                                    org_id)
        assert left == 0, f"{left} bench jobs did not complete"
        await admin.execute("DELETE FROM agents.jobs WHERE org_id = $1", org_id)
    finally:
        await pool.close()
        await admin.close()
        await runtime.stop()
    pairs = [o / r for o, r in zip(rates["ours"], rates["raw"], strict=True)]
    return [Figure(f"{PREFIX}.rate", max(rates["ours"]), "jobs/s", max(rates["raw"]),
                   f"two workers x {SLOTS} slots, no-op handler, {JOBS:,} jobs a round, best of {ROUNDS} alternating"
                   f" rounds (a round's ratio {min(pairs):.2f}-{max(pairs):.2f}); baseline two asyncpg loops of raw"
                   " SKIP LOCKED claim + complete; target ≥0.5x")]
