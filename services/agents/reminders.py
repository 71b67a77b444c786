"""Reminders: stored with the `reminder.send` job that will deliver each, moved or cancelled with their meeting,
and delivered by that job through the notification path.

The job is due at `remind_at`, and the job worker sleeps until the nearest due job of its queues (a timer per
replica, woken early by `NOTIFY agents_jobs` when one is enqueued or moved: worker.py), so a reminder fires
within milliseconds of its time, not at a poll. Delivery marks the reminder sent (once: a cancelled or already
sent one is skipped, so a second attempt delivers nothing twice), publishes its `Notice` on
`one.notify.<channel>` (and a `PersonEmailNotice` on `one.notify.person_email`, which tenancy mails when the
recipient is a person of the org) before that commits (a refused publish fails the attempt: retried), and logs the
`notification_event`. No SQL here (repository_scheduling.py).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.agents import jobs, repository_jobs as jobs_repo, repository_scheduling as repo
from services.agents.models_jobs import JobRow
from services.agents.models_scheduling import ReminderRow
from shared.contracts.jobs import JobKind
from shared.contracts.notify import PERSON_EMAIL_SUBJECT, PersonEmailNotice
from shared.contracts.scheduling import Notice, ReminderJobPayload
from shared.kernel import subjects
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext

MAX_ATTEMPTS = 5
REMINDER_EVENT = EventType.NOTIFICATION_EVENT


def _event(row: ReminderRow, status: str) -> tuple[str, EventPayload]:
    """The reminder's `notification_event`: scheduled, moved, cancelled or delivered."""
    metadata: dict[str, Any] = {
        "channel": row.channel, "deliveryStatus": status, "notificationType": "reminder", "reminderId": str(row.id),
        "remindAt": row.remind_at.isoformat(), "subject": row.subject,
    }
    if row.meeting_id is not None:
        metadata["meetingId"] = str(row.meeting_id)
    if row.related_id is not None:
        metadata["relatedId"] = str(row.related_id)
    if status == "delivered":
        metadata["message"] = row.message
    return REMINDER_EVENT, EventPayload(target_id=row.recipient_id, target_type="reminder", metadata=metadata)


async def add(ctx: WorkContext, reminders: Sequence[dict[str, Any]]) -> list[ReminderRow]:
    """Store reminders (`id`, `recipient_id`, `remind_at`, `message`, ...) each with its job, in the caller's
    transaction; the jobs' NOTIFY at commit wakes the workers."""
    if not reminders:
        return []
    values, job_events = [], []
    for reminder in reminders:
        job = await jobs_repo.insert(ctx.session, jobs_repo.NewJob(
            id=uuid7(), org_id=ctx.auth.org_id, queue="default", kind=JobKind.REMINDER_SEND,
            payload={"reminder_id": str(reminder["id"])}, priority=10, run_at=reminder["remind_at"],
            max_attempts=MAX_ATTEMPTS, idempotency_key=None, enqueued_by=ctx.auth.actor_id))
        if job is None:  # only a job with an idempotency key is ever skipped
            raise RuntimeError("a reminder's job was not inserted")
        job_events.append((jobs.JOB_EVENT, jobs.job_event(job, "enqueued")))
        values.append({"org_id": ctx.auth.org_id, "status": "scheduled", "created_by": ctx.auth.actor_id,
                       "job_id": job.id, **reminder})
    await jobs_repo.notify(ctx.session, "default")
    rows = await repo.insert(ctx.session, values)
    await ctx.emit_many([*job_events, *(_event(row, "scheduled") for row in rows)])
    return rows


async def move(ctx: WorkContext, rows: Sequence[ReminderRow], start: datetime) -> list[ReminderRow]:
    """Move a meeting's scheduled reminders to `offset_seconds` before its new start."""
    moved = []
    for row in rows:
        if row.status != "scheduled" or row.offset_seconds is None:
            moved.append(row)
            continue
        remind_at = datetime.fromtimestamp(start.timestamp() - row.offset_seconds, UTC)
        if row.job_id is not None:
            await jobs_repo.reschedule(ctx.session, ctx.auth.org_id, row.job_id, remind_at, fresh_attempts=False)
        moved.append(await repo.update(ctx.session, ctx.auth.org_id, row.id, {"remind_at": remind_at}))
    await jobs_repo.notify(ctx.session, "default")
    await ctx.emit_many([_event(row, "rescheduled") for row, old in zip(moved, rows, strict=True) if row is not old])
    return moved


async def cancel(ctx: WorkContext, rows: Sequence[ReminderRow]) -> list[ReminderRow]:
    """Cancel the scheduled ones and their jobs; sent and cancelled ones stay as they are."""
    done = []
    for row in rows:
        if row.status != "scheduled":
            done.append(row)
            continue
        if row.job_id is not None:
            job = await jobs_repo.get(ctx.session, ctx.auth.org_id, row.job_id, for_update=True)
            if job is not None and job.state in ("pending", "failed", "claimed"):
                await jobs_repo.cancel(ctx.session, ctx.auth.org_id, job.id)
        done.append(await repo.update(ctx.session, ctx.auth.org_id, row.id, {"status": "cancelled"}))
    await ctx.emit_many([_event(row, "cancelled") for row, old in zip(done, rows, strict=True) if row is not old])
    return done


async def deliver(ctx: WorkContext, job: JobRow, payload: ReminderJobPayload) -> dict[str, Any]:
    """The `reminder.send` job: mark it sent, hand its notice to the notification path, log the delivery."""
    async with ctx.transaction() as tx:
        row = await repo.mark_sent(tx.session, job.org_id, payload.reminder_id, datetime.now(UTC))
        if row is None:
            return {"delivered": False, "reason": "sent or cancelled already"}
        await publish(tx, row)
        event = (await tx.emit_many([_event(row, "delivered")]))[0]
    return {"delivered": True, "reminder_id": str(row.id), "event_id": str(event.id),
            "late_ms": round((row.sent_at - row.remind_at).total_seconds() * 1000) if row.sent_at else None}


async def publish(ctx: WorkContext, row: ReminderRow) -> None:
    notice = Notice(org_id=row.org_id, reminder_id=row.id, recipient_id=row.recipient_id, channel=row.channel,
                    subject=row.subject, message=row.message, related_id=row.related_id or row.meeting_id,
                    remind_at=row.remind_at, sent_at=row.sent_at or datetime.now(UTC))
    connection = ctx.runtime.broker.connection
    await connection.publish(subjects.notify(row.channel), notice.model_dump_json().encode())
    # and to the recipient's email when they are a person of the org (tenancy knows the address: notify_email.py)
    mail = PersonEmailNotice(org_id=row.org_id, recipient_id=row.recipient_id, notice_id=row.id, subject=row.subject or "Reminder",
                             message=row.message, related_id=notice.related_id, sent_at=notice.sent_at)
    await connection.publish(PERSON_EMAIL_SUBJECT, mail.model_dump_json().encode())
