"""Durable jobs' public face (served by the agents service): messages, payload and result models, errors.

A job is a unit of background work of one kind (`JobKind`) in one org: it waits `pending` until
its `run_at`, is `claimed` by one worker, `running`, then `completed`, or `failed` (retried after
a capped, jittered exponential backoff) and `dead` once its attempts are spent; a person may
`cancel` it or `retry` it. Each kind's `payload` has its model below, checked at enqueue.
The errors refine the shared families, so callers can catch either.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from shared.contracts.scheduling import ReminderJobPayload
from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.errors import Conflict, InvalidRequest, NotFound


class JobNotFound(NotFound):
    """No job with that id in the caller's org (another org's job is not found either)."""

    code = "job_not_found"


class JobStateConflict(Conflict):
    """The job's state does not allow the change (a completed job cannot be cancelled)."""

    code = "job_state_conflict"


class JobIdempotencyConflict(Conflict):
    """The idempotency key names a job of another kind, queue or payload."""

    code = "job_idempotency_conflict"


class UnknownJobKind(InvalidRequest):
    """No handler of that kind runs in this release."""

    code = "unknown_job_kind"


class InvalidJobPayload(InvalidRequest):
    """The payload does not match its kind's model; `details.errors` says where."""

    code = "invalid_job_payload"


class JobState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # an attempt failed; retried at `run_at`
    DEAD = "dead"  # attempts spent
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED})
"""States a job leaves only by a person's `retry` (completed: never)."""


class JobKind(StrEnum):
    AGENT_RUN = "agent.run"
    KNOWLEDGE_INGEST = "knowledge.ingest"
    NOTIFICATION_SEND = "notification.send"
    CLEANUP_EXPIRED = "cleanup.expired"
    A2A_PUSH = "a2a.push"
    REMINDER_SEND = "reminder.send"


QueueName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
KindName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,3}$", max_length=64)]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Limit = Annotated[int, Field(ge=1, le=100)]
MAX_PAYLOAD_BYTES = 64 * 1024


class IngestJobPayload(Payload):
    """`knowledge.ingest`: have the knowledge service (re-)ingest a thing's text."""

    thing_id: UUID
    fields: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(None, max_length=20)
    force: bool = False


class NotificationJobPayload(Payload):
    """`notification.send`: a reminder or notice to a person or agent, delivered as a `notification_event`
    (in-app; mail waits for tenancy to offer a mail contract to other services)."""

    recipient_id: UUID | None = Field(None, description="The person or agent notified; unset = the enqueuer.")
    channel: Literal["in_app"] = "in_app"
    subject: Annotated[str, StringConstraints(max_length=200)] = ""
    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    related_id: UUID | None = Field(None, description="What it is about (a thing, a message, an event).")


class CleanupJobPayload(Payload):
    """`cleanup.expired`: delete the org's finished jobs (completed, dead, cancelled) older than this."""

    older_than_days: int = Field(30, ge=1, le=3650)


class AgentRunJobPayload(Payload):
    """`agent.run`: send a message to one of the org's agents (its answer is stored in the thread)."""

    agent: Annotated[str, StringConstraints(min_length=1, max_length=120)] = Field(
        description="The agent's slug or id.")
    message: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    thread_id: UUID | None = None


class A2aPushJobPayload(Payload):
    """`a2a.push`: tell an A2A client's webhook the task's final state (shared/contracts/a2a.py; enqueued by the
    agents service when a push config is set)."""

    task_id: UUID
    config_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]


KIND_PAYLOADS: dict[JobKind, type[Payload]] = {
    JobKind.AGENT_RUN: AgentRunJobPayload,
    JobKind.KNOWLEDGE_INGEST: IngestJobPayload,
    JobKind.NOTIFICATION_SEND: NotificationJobPayload,
    JobKind.CLEANUP_EXPIRED: CleanupJobPayload,
    JobKind.A2A_PUSH: A2aPushJobPayload,
    JobKind.REMINDER_SEND: ReminderJobPayload,
}


class Job(BaseModel):
    id: UUID
    kind: str
    queue: str
    payload: dict[str, Any]
    priority: int
    state: JobState
    run_at: datetime = Field(description="When it may run (next): its schedule, or its retry after a failure.")
    attempts: int = Field(description="Attempts started so far (one whose worker died counts).")
    max_attempts: int
    idempotency_key: str | None
    last_error: str | None
    result: dict[str, Any] | None
    enqueued_by: UUID
    claimed_by: str | None = Field(description="The worker (replica) holding it, while claimed or running.")
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobEnqueue(Payload):
    kind: KindName = Field(description="One of `JobKind`; the payload is checked against its model.")
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(0, ge=-1000, le=1000, description="Higher runs first among due jobs of a queue.")
    run_at: AwareDatetime | None = Field(None, description="Not before this time (a scheduled job); unset = now.")
    max_attempts: int = Field(5, ge=1, le=25)
    idempotency_key: IdempotencyKey | None = Field(
        None, description="Per org: enqueuing the same key again answers the job it made, instead of a second one.")
    queue: QueueName = Field("default", description="Workers serve named queues (`agents_jobs_queues`).")


class JobTarget(Payload):
    id: UUID


class JobRetry(Payload):
    id: UUID
    run_at: AwareDatetime | None = Field(None, description="Unset = now.")


class JobQuery(Payload):
    state: list[JobState] = Field(default_factory=list, max_length=7, description="Any of these; none = every state.")
    kind: KindName | None = None
    queue: QueueName | None = None
    cursor: UUID | None = Field(None, description="`next_cursor` of the previous page (newest first).")
    limit: Limit = 50


class Jobs(BaseModel):
    jobs: list[Job]
    next_cursor: UUID | None = None


def _message(type_: str, payload: type[Payload], result: type[BaseModel]) -> Any:
    return register_message(type_, subjects.command("agents", type_.removeprefix("agents.")), payload, result)


JOB_ENQUEUE = _message("agents.jobs.enqueue", JobEnqueue, Job)
JOB_GET = _message("agents.jobs.get", JobTarget, Job)
JOB_LIST = _message("agents.jobs.list", JobQuery, Jobs)
JOB_CANCEL = _message("agents.jobs.cancel", JobTarget, Job)
JOB_RETRY = _message("agents.jobs.retry", JobRetry, Job)
