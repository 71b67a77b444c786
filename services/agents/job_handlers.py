"""What each kind of job does, and what its enqueuer must be allowed to do (checked at enqueue).

A handler runs in the job's org as the agents service, on behalf of the enqueuer
(`runtime.background(org, on_behalf_of=enqueuer)`, so its events name the enqueuer as actor), with
the service's grants (app.py). It returns the job's `result`; an error it raises fails the attempt
(worker.py decides between retry and dead). Every handler is safe to run again: a job runs at least
once, and twice when its worker dies after the work but before recording it.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from services.agents import a2a_push, reminders, repository_jobs as repo
from services.agents.models_jobs import JobRow
from shared.contracts.agents import CHAT
from shared.contracts.jobs import (
    A2aPushJobPayload,
    AgentRunJobPayload,
    CleanupJobPayload,
    IngestJobPayload,
    JobKind,
    NotificationJobPayload,
)
from shared.contracts.knowledge import INGEST
from shared.contracts.scheduling import ReminderJobPayload
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext

JobHandler = Callable[[WorkContext, JobRow], Awaitable[dict[str, Any] | None]]
"""A kind's work: the job's context and row in, its result out."""


@dataclass(frozen=True)
class Kind:
    payload: type[BaseModel]
    permission: tuple[str, str]
    """(resource, action) the enqueuer needs: the job does it for them."""
    run: Callable[[WorkContext, JobRow, Any], Awaitable[dict[str, Any] | None]]

    async def handle(self, ctx: WorkContext, job: JobRow) -> dict[str, Any] | None:
        return await self.run(ctx, job, self.payload.model_validate(job.payload))


async def ingest(ctx: WorkContext, _: JobRow, payload: IngestJobPayload) -> dict[str, Any]:
    """The knowledge service queues the ingestion (it runs its own, debounced queue)."""
    queued = await ctx.call(INGEST, {"thing_id": str(payload.thing_id), "fields": payload.fields,
                                     "force": payload.force})
    return {"knowledge_job_id": str(queued.id)}


async def send_notification(ctx: WorkContext, job: JobRow, payload: NotificationJobPayload) -> dict[str, Any]:
    """An in-app notification: the `notification_event` is the delivery (clients follow the event log)."""
    recipient = payload.recipient_id or job.enqueued_by
    metadata = {"channel": payload.channel, "deliveryStatus": "delivered", "subject": payload.subject,
                "message": payload.message, "jobId": str(job.id)}
    if payload.related_id is not None:
        metadata["relatedId"] = str(payload.related_id)
    async with ctx.transaction() as tx:
        event = await tx.emit(EventType.NOTIFICATION_EVENT, target_id=recipient, metadata=metadata)
    return {"recipient_id": str(recipient), "event_id": str(event.id)}


async def clean_up(ctx: WorkContext, job: JobRow, payload: CleanupJobPayload) -> dict[str, Any]:
    """Expired data: the org's jobs that ended longer ago than the payload says."""
    async with ctx.transaction() as tx:
        deleted = await repo.delete_finished(tx.session, job.org_id, payload.older_than_days)
    return {"deleted_jobs": deleted}


async def run_agent(ctx: WorkContext, _: JobRow, payload: AgentRunJobPayload) -> dict[str, Any]:
    """Start the agent's run (runs are durable on their own: the job ends once it started)."""
    try:
        ref: dict[str, Any] = {"id": str(UUID(payload.agent))}
    except ValueError:
        ref = {"slug": payload.agent}
    started = await ctx.call(CHAT, {**ref, "message": payload.message, "thread_id": payload.thread_id and
                                    str(payload.thread_id), "wait": False})
    return {"run_id": str(started.run.id), "conversation_id": str(started.conversation_id)}


KINDS: dict[str, Kind] = {
    JobKind.KNOWLEDGE_INGEST: Kind(IngestJobPayload, ("knowledge", "create"), ingest),
    JobKind.NOTIFICATION_SEND: Kind(NotificationJobPayload, ("jobs", "create"), send_notification),
    JobKind.CLEANUP_EXPIRED: Kind(CleanupJobPayload, ("jobs", "delete"), clean_up),
    JobKind.AGENT_RUN: Kind(AgentRunJobPayload, ("agents", "run"), run_agent),
    JobKind.A2A_PUSH: Kind(A2aPushJobPayload, ("a2a", "send"), a2a_push.deliver),
    JobKind.REMINDER_SEND: Kind(ReminderJobPayload, ("reminders", "create"), reminders.deliver),
}

HANDLERS: dict[str, JobHandler] = {kind: spec.handle for kind, spec in KINDS.items()}
GRANTS = ("knowledge:create", "agents:run")
"""What the service itself needs in an org to run these kinds (`ServiceDefinition.grants`)."""
