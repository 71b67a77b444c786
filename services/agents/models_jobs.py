"""The `agents.jobs` table as SQLAlchemy Core (DDL lives in migrations/v0003_jobs.py), the row the
repository returns, and its reply form (`shared.contracts.jobs.Job`)."""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.contracts.jobs import Job

metadata = sa.MetaData(schema="agents")
_ts = sa.DateTime(timezone=True)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("queue", sa.Text),
    sa.Column("kind", sa.Text), sa.Column("payload", JSONB), sa.Column("priority", sa.Integer),
    sa.Column("state", sa.Text), sa.Column("run_at", _ts), sa.Column("attempts", sa.Integer),
    sa.Column("max_attempts", sa.Integer), sa.Column("idempotency_key", sa.Text), sa.Column("last_error", sa.Text),
    sa.Column("result", JSONB), sa.Column("enqueued_by", sa.Uuid), sa.Column("claimed_by", sa.Text),
    sa.Column("lease_until", _ts), sa.Column("created_at", _ts), sa.Column("updated_at", _ts),
    sa.Column("started_at", _ts), sa.Column("finished_at", _ts),
)


@dataclass(slots=True)
class JobRow:
    """A stored job, built positionally from a row of `jobs` (fields in the table's column order)."""

    id: UUID
    org_id: UUID
    queue: str
    kind: str
    payload: dict[str, Any]
    priority: int
    state: str
    run_at: datetime
    attempts: int
    max_attempts: int
    idempotency_key: str | None
    last_error: str | None
    result: dict[str, Any] | None
    enqueued_by: UUID
    claimed_by: str | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def to_job(self) -> Job:
        fields = asdict(self)
        del fields["org_id"]
        return Job.model_validate(fields)
