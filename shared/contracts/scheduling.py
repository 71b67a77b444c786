"""Scheduling's public face (served by the agents service): meetings with participants, and reminders that fire.

A meeting is a graph thing (type `conversation`, `properties.conversationType = "meeting"`, seed 002's
"events: scheduled meetings") with `participated_in` connections from its participants; the agents service's
scheduling domain creates it and keeps its reminders. A reminder (for a meeting, or standalone) is a durable
job (`reminder.send`) due at `remind_at`: the job worker wakes at that time (no polling), hands a `Notice` to
the notification path (`one.notify.<channel>`, core NATS) and logs a `notification_event`
(`deliveryStatus: delivered`, `notificationType: reminder`). Rescheduling a meeting moves its reminders;
cancelling it cancels them. The errors refine the shared families.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.errors import Conflict, NotFound


class MeetingNotFound(NotFound):
    code = "meeting_not_found"


class ReminderNotFound(NotFound):
    code = "reminder_not_found"


class MeetingCancelled(Conflict):
    """A cancelled meeting cannot be rescheduled."""

    code = "meeting_cancelled"


Channel = Literal["in_app"]
"""Delivery channels: `in_app` (the notice on `one.notify.in_app` and the `notification_event`). A recipient who is
a person of the org is also mailed, whatever the channel (shared/contracts/notify.py, docs/scheduling.md)."""
Title = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Offset = Annotated[int, Field(ge=0, le=30 * 86400)]


class MeetingSchedule(Payload):
    title: Title
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    start_time: AwareDatetime
    end_time: AwareDatetime
    participant_ids: list[UUID] = Field(default_factory=list, max_length=100,
                                        description="People or agents (graph things of the org).")
    remind_before: list[Offset] = Field(default_factory=list, max_length=5,
                                        description="Seconds before the start: one reminder per participant each.")


class MeetingTarget(Payload):
    id: UUID


class MeetingReschedule(Payload):
    id: UUID
    start_time: AwareDatetime
    end_time: AwareDatetime


class ReminderCreate(Payload):
    remind_at: AwareDatetime
    message: Text
    subject: Annotated[str, StringConstraints(max_length=200)] = "Reminder"
    recipient_id: UUID | None = Field(None, description="The person or agent reminded; unset = the caller.")
    related_id: UUID | None = Field(None, description="What it is about (a meeting, a thing).")
    channel: Channel = "in_app"


class ReminderTarget(Payload):
    id: UUID


class ReminderQuery(Payload):
    meeting_id: UUID | None = None
    status: Literal["scheduled", "sent", "cancelled"] | None = None


class Reminder(BaseModel):
    id: UUID
    meeting_id: UUID | None
    recipient_id: UUID
    related_id: UUID | None
    channel: str
    subject: str
    message: str
    remind_at: datetime
    offset_seconds: int | None = Field(description="Seconds before its meeting's start, for a meeting's reminder.")
    status: Literal["scheduled", "sent", "cancelled"]
    job_id: UUID | None
    created_by: UUID
    created_at: datetime
    sent_at: datetime | None


class Reminders(BaseModel):
    reminders: list[Reminder]


class Meeting(BaseModel):
    id: UUID = Field(description="The meeting's graph thing.")
    title: str
    description: str
    start_time: datetime
    end_time: datetime
    status: Literal["scheduled", "cancelled"]
    participant_ids: list[UUID]
    reminders: list[Reminder]


class Notice(BaseModel):
    """What goes on `one.notify.<channel>` when a reminder fires: for the adapter that delivers it."""

    org_id: UUID
    reminder_id: UUID
    recipient_id: UUID
    channel: str
    subject: str
    message: str
    related_id: UUID | None
    remind_at: datetime
    sent_at: datetime


class ReminderJobPayload(Payload):
    """`reminder.send`: deliver the reminder (skipped once it is sent or cancelled)."""

    reminder_id: UUID


def _message(type_: str, payload: type[Payload], result: type[BaseModel], permission: str) -> Any:
    return register_message(type_, subjects.command("agents", type_.removeprefix("agents.")), payload, result,
                            permission=permission)


MEETING_SCHEDULE = _message("agents.meetings.schedule", MeetingSchedule, Meeting, "meetings:create")
MEETING_GET = _message("agents.meetings.get", MeetingTarget, Meeting, "meetings:read")
MEETING_RESCHEDULE = _message("agents.meetings.reschedule", MeetingReschedule, Meeting, "meetings:update")
MEETING_CANCEL = _message("agents.meetings.cancel", MeetingTarget, Meeting, "meetings:update")
REMINDER_CREATE = _message("agents.reminders.create", ReminderCreate, Reminder, "reminders:create")
REMINDER_CANCEL = _message("agents.reminders.cancel", ReminderTarget, Reminder, "reminders:update")
REMINDER_LIST = _message("agents.reminders.list", ReminderQuery, Reminders, "reminders:list")
