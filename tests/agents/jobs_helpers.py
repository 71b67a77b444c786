"""Helpers of the jobs tests: enqueue and follow jobs over the bus, workers of a test's own queue, the
jobs' events as the agents service published them (its outbox)."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from services.agents.job_handlers import JobHandler
from services.agents.worker import JobWorker, WorkerPolicy
from shared.contracts.jobs import JOB_ENQUEUE, JOB_GET, Job
from shared.kernel.envelope import AuthContext
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime

StartWorker = Callable[..., Awaitable[JobWorker]]


def a_queue() -> str:
    """A queue of the test's own: the session's agents replica serves `default` only."""
    return f"test-{uuid7().hex[-12:]}"


async def enqueue(bus: BusClient, ctx: AuthContext, message: str = "hello", *, kind: str = "notification.send",
                  payload: dict[str, Any] | None = None, **fields: Any) -> Job:
    body = {"kind": kind, "payload": payload if payload is not None else {"message": message}, **fields}
    return await bus.request(JOB_ENQUEUE, body, ctx)


async def settled(bus: BusClient, ctx: AuthContext, job_id: UUID, states: tuple[str, ...] = ("completed",),
                  timeout: float = 30.0) -> Job:
    """The job once it is in one of `states`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await bus.request(JOB_GET, {"id": str(job_id)}, ctx)
        if job.state in states:
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def job_events(runtime: ServiceRuntime, org_id: UUID, event_type: str = "task_event") -> list[dict[str, Any]]:
    """The agents service's events of that type for the org, oldest first (envelopes, as published)."""
    async with runtime.db.transaction() as session:
        rows = (await session.execute(sa.text(
            "SELECT convert_from(envelope, 'UTF8') FROM agents.outbox WHERE subject LIKE :subject ORDER BY created_at"),
            {"subject": f"%.{org_id}.{event_type}"})).scalars().all()
    return [json.loads(row) for row in rows]


@pytest.fixture
async def start_worker(services: dict[str, ServiceRuntime]) -> AsyncIterator[StartWorker]:
    """Start a worker of the agents replica's runtime on a queue, with the test's handlers; all stop afterwards."""
    started: list[JobWorker] = []

    async def start(handlers: Mapping[str, JobHandler], queue: str, **policy: Any) -> JobWorker:
        worker = JobWorker(services["agents"], handlers, WorkerPolicy(queues=(queue,), **policy))
        await worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.stop()
