"""Jobs as a caller sees them: enqueue (idempotent per org), read, list, cancel, retry.

No SQL here (repository_jobs.py) and no bus calls. Every change is RBAC-checked (`jobs:*`),
org-scoped and logged as a `task_event` (`metadata.taskType = "job"`, `action` the change). A job
runs later as the agents service on the enqueuer's behalf (worker.py), so enqueuing one also needs
the permission of what its kind does (`job_handlers.KINDS`): nobody gets done by a job what they
could not do themselves.
"""

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from services.agents import repository_jobs as repo
from services.agents.models_jobs import JobRow
from shared.contracts.jobs import (
    FINAL_STATES,
    MAX_PAYLOAD_BYTES,
    InvalidJobPayload,
    Job,
    JobEnqueue,
    JobIdempotencyConflict,
    JobNotFound,
    JobQuery,
    JobRetry,
    Jobs,
    JobState,
    JobStateConflict,
    JobTarget,
    UnknownJobKind,
)
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

JOB_EVENT = EventType.TASK_EVENT
_CANCELLABLE = frozenset({JobState.PENDING, JobState.FAILED, JobState.CLAIMED, JobState.RUNNING})
_RETRYABLE = frozenset({JobState.FAILED, JobState.DEAD, JobState.CANCELLED})


def job_event(row: JobRow, action: str) -> EventPayload:
    """The `task_event` of a change to a job: what it is, and how far it got."""
    metadata: dict[str, Any] = {
        "protocol": "native", "taskType": "job", "action": action, "jobId": str(row.id), "kind": row.kind,
        "queue": row.queue, "state": row.state, "attempt": row.attempts, "maxAttempts": row.max_attempts,
    }
    if row.last_error and action in ("failed", "dead"):
        metadata["error"] = row.last_error
    if row.state == JobState.FAILED:
        metadata["retryAt"] = row.run_at.isoformat()
    return EventPayload(target_id=row.id, metadata=metadata)


async def _emit(ctx: WorkContext, row: JobRow, action: str) -> None:
    event = job_event(row, action)
    await ctx.emit(JOB_EVENT, target_id=event.target_id, metadata=event.metadata)


def checked_payload(request: JobEnqueue, kinds: Mapping[str, Any], ctx: WorkContext) -> dict[str, Any]:
    """The payload as its kind's model reads it (defaults filled in), once the caller may have it done."""
    kind = kinds.get(request.kind)
    if kind is None:
        raise UnknownJobKind(f"no job kind {request.kind!r}; known: {', '.join(sorted(kinds))}",
                             {"kind": request.kind, "known": sorted(kinds)})
    require(ctx.auth, *kind.permission)
    try:
        payload = kind.payload.model_validate(request.payload).model_dump(mode="json", exclude_none=True)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_context=False, include_input=False)
        raise InvalidJobPayload(f"the payload of a {request.kind} job is invalid", {"errors": errors}) from None
    if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
        raise InvalidJobPayload(f"a job's payload is at most {MAX_PAYLOAD_BYTES} bytes of JSON",
                                {"max_bytes": MAX_PAYLOAD_BYTES})
    return payload


async def enqueue(ctx: WorkContext, request: JobEnqueue, kinds: Mapping[str, Any]) -> Job:
    require(ctx.auth, "jobs", "create")
    payload = checked_payload(request, kinds, ctx)
    auth = ctx.auth
    new = repo.NewJob(
        id=uuid7(), org_id=auth.org_id, queue=request.queue, kind=request.kind, payload=payload,
        priority=request.priority, run_at=request.run_at, max_attempts=request.max_attempts,
        idempotency_key=request.idempotency_key, enqueued_by=auth.actor_id)
    row = await repo.insert(ctx.session, new)
    if row is None:  # the key made a job already (perhaps in a concurrent request, committed first)
        return _same_request(await repo.by_idempotency_key(ctx.session, auth.org_id, request.idempotency_key), new)
    await repo.notify(ctx.session, row.queue)
    await _emit(ctx, row, "enqueued")
    return row.to_job()


def _same_request(existing: JobRow | None, new: repo.NewJob) -> Job:
    if existing is None:  # deleted between the conflict and the read: say so rather than guess
        raise JobIdempotencyConflict("the job of this idempotency key was just removed; enqueue again",
                                     {"idempotency_key": new.idempotency_key})
    if (existing.kind, existing.queue, existing.payload) != (new.kind, new.queue, new.payload):
        raise JobIdempotencyConflict(
            "the idempotency key was used for a job of another kind, queue or payload",
            {"idempotency_key": new.idempotency_key, "job_id": str(existing.id)})
    return existing.to_job()


async def _job(ctx: WorkContext, job_id: Any, *, for_update: bool = False) -> JobRow:
    row = await repo.get(ctx.session, ctx.auth.org_id, job_id, for_update=for_update)
    if row is None:
        raise JobNotFound(f"no job {job_id}", {"id": str(job_id)})
    return row


async def get(ctx: WorkContext, target: JobTarget) -> Job:
    require(ctx.auth, "jobs", "read")
    return (await _job(ctx, target.id)).to_job()


async def list_jobs(ctx: WorkContext, query: JobQuery) -> Jobs:
    require(ctx.auth, "jobs", "list")
    rows = await repo.page(ctx.session, ctx.auth.org_id, states=[s.value for s in query.state], kind=query.kind,
                           queue=query.queue, cursor=query.cursor, limit=query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return Jobs(jobs=[row.to_job() for row in rows], next_cursor=rows[-1].id if more else None)


async def cancel(ctx: WorkContext, target: JobTarget) -> Job:
    """A job that has not ended stops: a running one's worker drops it at its next heartbeat."""
    require(ctx.auth, "jobs", "cancel")
    row = await _job(ctx, target.id, for_update=True)
    if row.state == JobState.CANCELLED:
        return row.to_job()
    if row.state not in _CANCELLABLE:
        raise JobStateConflict(f"a {row.state} job cannot be cancelled", {"id": str(row.id), "state": row.state})
    row = await repo.cancel(ctx.session, row.org_id, row.id)
    await _emit(ctx, row, "cancelled")
    return row.to_job()


async def retry(ctx: WorkContext, request: JobRetry) -> Job:
    """Run a failed job now (or at `run_at`); a dead or cancelled one gets all its attempts back."""
    require(ctx.auth, "jobs", "retry")
    row = await _job(ctx, request.id, for_update=True)
    if row.state not in _RETRYABLE:
        raise JobStateConflict(f"a {row.state} job cannot be retried", {"id": str(row.id), "state": row.state})
    row = await repo.reschedule(ctx.session, row.org_id, row.id, request.run_at,
                                fresh_attempts=row.state in FINAL_STATES)
    await repo.notify(ctx.session, row.queue)
    await _emit(ctx, row, "retried")
    return row.to_job()
