"""The jobs' subscribers (enqueue, get, list, cancel, retry) and the hooks that start and stop this
replica's workers; joined to the service's router in app.py."""

from weakref import WeakKeyDictionary

from services.agents import jobs
from services.agents.job_handlers import HANDLERS, KINDS
from services.agents.worker import JobWorker, WorkerPolicy
from shared.contracts.jobs import (
    JOB_CANCEL,
    JOB_ENQUEUE,
    JOB_GET,
    JOB_LIST,
    JOB_RETRY,
    Job,
    JobEnqueue,
    JobQuery,
    JobRetry,
    Jobs,
    JobTarget,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceRuntime

jobs_router = ServiceRouter("agents")
WORKERS: "WeakKeyDictionary[ServiceRuntime, JobWorker]" = WeakKeyDictionary()
"""Each replica's workers (two replicas may share a process, e.g. in tests)."""


@jobs_router.handler(JOB_ENQUEUE)
async def enqueue_job(ctx: WorkContext, payload: JobEnqueue) -> Job:
    return await jobs.enqueue(ctx, payload, KINDS)


@jobs_router.handler(JOB_GET)
async def get_job(ctx: WorkContext, payload: JobTarget) -> Job:
    return await jobs.get(ctx, payload)


@jobs_router.handler(JOB_LIST)
async def list_jobs(ctx: WorkContext, payload: JobQuery) -> Jobs:
    return await jobs.list_jobs(ctx, payload)


@jobs_router.handler(JOB_CANCEL)
async def cancel_job(ctx: WorkContext, payload: JobTarget) -> Job:
    return await jobs.cancel(ctx, payload)


@jobs_router.handler(JOB_RETRY)
async def retry_job(ctx: WorkContext, payload: JobRetry) -> Job:
    return await jobs.retry(ctx, payload)


async def start_workers(runtime: ServiceRuntime) -> None:
    policy = WorkerPolicy.from_settings(runtime.settings)
    if policy.slots:
        worker = JobWorker(runtime, HANDLERS, policy)
        await worker.start()
        WORKERS[runtime] = worker


async def stop_workers(runtime: ServiceRuntime) -> None:
    worker = WORKERS.pop(runtime, None)
    if worker is not None:
        await worker.stop()
