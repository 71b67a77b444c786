"""The `eventlog` schema as SQLAlchemy Core tables (DDL lives in migrations/), and the row the ingest inserts.

The records replies carry (`EventRecord`, `DeadLetter`, ...) are the event log's
public face, in `shared.contracts.eventlog`.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(schema="eventlog")

events = sa.Table(
    "events", metadata,
    sa.Column("position", sa.BigInteger, primary_key=True), sa.Column("id", sa.Uuid), sa.Column("org_id", sa.Uuid),
    sa.Column("type", sa.Text), sa.Column("actor_id", sa.Uuid), sa.Column("target_id", sa.Uuid),
    sa.Column("target_type", sa.Text), sa.Column("protocol", sa.Text), sa.Column("transport_protocol", sa.Text),
    sa.Column("occurred_at", sa.DateTime(timezone=True)), sa.Column("recorded_at", sa.DateTime(timezone=True)),
    sa.Column("metadata", JSONB), sa.Column("correlation_id", sa.Uuid), sa.Column("causation_id", sa.Uuid),
    sa.Column("trace_id", sa.Text), sa.Column("stream_seq", sa.BigInteger),
)

dead_letters = sa.Table(
    "dead_letters", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("dedup_key", sa.Text), sa.Column("org_id", sa.Uuid),
    sa.Column("event_id", sa.Uuid), sa.Column("subject", sa.Text), sa.Column("stream_seq", sa.BigInteger),
    sa.Column("reason_code", sa.Text), sa.Column("reason", sa.Text), sa.Column("raw", sa.Text),
    sa.Column("deliveries", sa.Integer), sa.Column("recorded_at", sa.DateTime(timezone=True)),
)


@dataclass(slots=True)
class IncomingEvent:
    """One message of `ONE_EVENTS`, checked and ready to insert into `events`.

    `raw` is the envelope as it arrived (Postgres takes the metadata from it, so it
    keeps its exact bytes); `patch` is the JSON object of metadata keys the check adds.
    """

    id: UUID
    org_id: UUID
    type: str
    actor_id: UUID | None
    target_id: UUID | None
    target_type: str | None
    protocol: str
    transport_protocol: str
    occurred_at: datetime
    raw: str
    patch: str
    correlation_id: UUID | None
    causation_id: UUID | None
    trace_id: str | None
    stream_seq: int | None
