"""A worker killed mid-job (a real process, SIGKILLed while it holds the lease): another worker of the
queue ends that attempt as failed once the lease passes, and runs the job again."""

import asyncio
import signal
import sys
from typing import Any

from services.agents.models_jobs import JobRow
from shared.contracts.jobs import JOB_GET
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime
from tests.agents.jobs_helpers import StartWorker, a_queue, enqueue, job_events, settled, start_worker  # noqa: F401
from tests.graph.conftest import owner  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)


async def test_a_worker_killed_mid_job_leaves_the_job_retried(
    bus: BusClient, owner: Account, migrated: Settings, services: dict[str, ServiceRuntime], start_worker: StartWorker
) -> None:
    queue = a_queue()
    job = await enqueue(bus, owner.ctx, "survive me", queue=queue, max_attempts=3)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agents.jobs_until_killed", migrated.database_url, migrated.nats_url, queue,
        stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        assert line.decode().split() == ["running", str(job.id)], line
        held = await bus.request(JOB_GET, {"id": str(job.id)}, owner.ctx)
        assert held.state == "running" and held.attempts == 1 and held.claimed_by
    finally:
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL

    ran: list[int] = []

    async def finish(_: WorkContext, again: JobRow) -> dict[str, Any]:
        ran.append(again.attempts)
        return {"by": "survivor"}

    await start_worker({"notification.send": finish}, queue, lease=1.0)
    done = await settled(bus, owner.ctx, job.id)
    assert done.attempts == 2 and ran == [2] and done.result == {"by": "survivor"}
    events = [e["payload"]["metadata"] for e in await job_events(services["agents"], owner.org_id)]
    assert [m["action"] for m in events] == ["enqueued", "failed", "completed"]
    assert events[1]["error"].startswith(f"lease expired: worker {held.claimed_by} stopped renewing it")
