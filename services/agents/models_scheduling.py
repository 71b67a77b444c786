"""The `agents.reminders` table as SQLAlchemy Core (DDL in migrations/v0008_scheduling.py), its row and reply form."""

from dataclasses import asdict, dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from services.agents.models_jobs import metadata
from shared.contracts.scheduling import Reminder

_ts = sa.DateTime(timezone=True)

reminders = sa.Table(
    "reminders", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("meeting_id", sa.Uuid),
    sa.Column("recipient_id", sa.Uuid), sa.Column("related_id", sa.Uuid), sa.Column("channel", sa.Text),
    sa.Column("subject", sa.Text), sa.Column("message", sa.Text), sa.Column("remind_at", _ts),
    sa.Column("offset_seconds", sa.Integer), sa.Column("status", sa.Text), sa.Column("job_id", sa.Uuid),
    sa.Column("created_by", sa.Uuid), sa.Column("created_at", _ts), sa.Column("sent_at", _ts),
)


@dataclass(slots=True)
class ReminderRow:
    """A stored reminder, built positionally from a row of `reminders` (fields in the table's column order)."""

    id: UUID
    org_id: UUID
    meeting_id: UUID | None
    recipient_id: UUID
    related_id: UUID | None
    channel: str
    subject: str
    message: str
    remind_at: datetime
    offset_seconds: int | None
    status: str
    job_id: UUID | None
    created_by: UUID
    created_at: datetime
    sent_at: datetime | None

    def to_reminder(self) -> Reminder:
        fields = asdict(self)
        del fields["org_id"]
        return Reminder.model_validate(fields)
