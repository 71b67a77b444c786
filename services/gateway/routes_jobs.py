"""Durable jobs' REST routes (served by the agents service): enqueue, list, read, cancel, retry.

Each route is one bus request on `shared.contracts.jobs`' models; the org is the verified key's.
Enqueuing answers 201 with the job, also when an idempotency key names a job made before (the
same job, as the bus answers it).
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus, _set
from services.gateway.shapes import derived
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
)

JobRetryBody = derived(JobRetry, "JobRetryBody", drop=("id",))

router = APIRouter(prefix="/v1", tags=["jobs"])


@router.post("/jobs", status_code=201, responses=WRITE)
async def enqueue_job(body: JobEnqueue, caller: Caller, bus: Bus) -> Job:
    return await bus.request(JOB_ENQUEUE, body, caller)


@router.get("/jobs", responses=READ)
async def list_jobs(query: Annotated[JobQuery, Query()], caller: Caller, bus: Bus) -> Jobs:
    return await bus.request(JOB_LIST, query, caller)


@router.get("/jobs/{id}", responses=READ)
async def get_job(id: UUID, caller: Caller, bus: Bus) -> Job:
    return await bus.request(JOB_GET, {"id": id}, caller)


@router.post("/jobs/{id}/cancel", responses=WRITE)
async def cancel_job(id: UUID, caller: Caller, bus: Bus) -> Job:
    return await bus.request(JOB_CANCEL, {"id": id}, caller)


@router.post("/jobs/{id}/retry", responses=WRITE)
async def retry_job(id: UUID, caller: Caller, bus: Bus, body: JobRetryBody | None = None) -> Job:  # type: ignore[valid-type]
    return await bus.request(JOB_RETRY, {"id": id, **(_set(body) if body is not None else {})}, caller)
