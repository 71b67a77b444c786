"""The event log's public face: its messages, their payload and result models, and its error.

Who publishes and for which org always comes from the envelope, never the payload.
A protocol-specific event (`payment_event`, `task_event`, ...) names its protocol in
`metadata.protocol`; published over that protocol (the envelope's tag) it may leave
it out and the log fills it in; published natively it must say it.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import InvalidRequest

MAX_BATCH = 1000
MAX_POSITION = 2**63 - 1
"""Positions and dead-letter ids are Postgres bigints: a cursor past this is refused, not sent to the database."""


class InvalidEvent(InvalidRequest):
    """An event the log will not store; `reason_code` says why (also the dead-letter reason)."""

    def __init__(self, reason_code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, {"reason": reason_code, **(details or {})})
        self.reason_code = reason_code


class AppendEvent(Payload):
    """One event as a producer states it; who and for which org come from the envelope."""

    type: str = Field(min_length=1, max_length=100, description="Canonical or granular name, e.g. `payment_processed`.")
    target_id: UUID | None = None
    target_type: str | None = Field(None, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = Field(None, description="Default: the envelope's `occurred_at`.")
    id: UUID | None = Field(None, description="Idempotency key; default: derived from the envelope id.")


class Appended(BaseModel):
    id: UUID
    type: str
    subject: str
    stream_seq: int
    duplicate: bool


class AppendBatch(Payload):
    events: list[AppendEvent] = Field(min_length=1, max_length=MAX_BATCH)


class AppendedBatch(BaseModel):
    events: list[Appended]


class EventFilter(Payload):
    """Any mix of these narrows an org's events; `types` accepts granular names too."""

    types: list[str] = Field(default_factory=list, max_length=50)
    actor_id: UUID | None = None
    target_id: UUID | None = None
    thing_id: UUID | None = Field(None, description="Events with this thing as actor or target.")
    protocols: list[str] = Field(default_factory=list, max_length=10)
    since: datetime | None = Field(None, description="occurred_at >= since")
    until: datetime | None = Field(None, description="occurred_at < until")
    metadata: dict[str, Any] | None = Field(None, description="Events whose metadata contains this object.")


class EventQuery(EventFilter):
    after: int | None = Field(None, ge=0, le=MAX_POSITION,
                              description="Cursor: positions greater than this (ascending order).")
    before: int | None = Field(None, ge=0, le=MAX_POSITION,
                               description="Cursor: positions less than this (descending order).")
    order: Literal["asc", "desc"] = "asc"
    limit: int = Field(100, ge=1, le=1000)


class ThingHistory(Payload):
    thing_id: UUID
    before: int | None = Field(None, ge=0, le=MAX_POSITION)
    limit: int = Field(100, ge=1, le=1000)


class EventTail(EventFilter):
    after: int = Field(0, ge=0, le=MAX_POSITION, description="The last position the reader has seen.")
    wait: float = Field(10.0, ge=0, le=60, description="Seconds to wait when nothing is there yet.")
    limit: int = Field(500, ge=1, le=1000)


class EventRecord(BaseModel):
    position: int
    id: UUID
    org_id: UUID
    type: str
    actor_id: UUID | None
    target_id: UUID | None
    target_type: str | None
    protocol: str
    transport_protocol: str
    occurred_at: datetime
    recorded_at: datetime
    metadata: dict[str, Any]
    correlation_id: UUID | None
    causation_id: UUID | None
    trace_id: str | None


class EventPage(BaseModel):
    events: list[EventRecord]
    next_cursor: int | None = Field(None, description="Pass as `after` (asc) or `before` (desc) for the next page.")


class TailPage(BaseModel):
    events: list[EventRecord]
    cursor: int = Field(description="Resume from here: the last position returned, or `after` when none.")


class DailyCountsQuery(Payload):
    since: datetime
    until: datetime
    types: list[str] = Field(default_factory=list, max_length=50)


class DailyCount(BaseModel):
    day: date
    type: str
    count: int


class DailyCounts(BaseModel):
    counts: list[DailyCount]


class RevenueQuery(Payload):
    since: datetime
    until: datetime
    status: str | None = Field("processed", description="payment_event metadata.status to count; null = every status.")
    currency: str | None = None


class ProtocolRevenue(BaseModel):
    protocol: str
    currency: str | None
    total: Decimal
    count: int


class Revenue(BaseModel):
    totals: list[ProtocolRevenue]
    by_protocol: dict[str, Decimal] = Field(description="Totals per protocol; mixes currencies unless `currency` is set.")


class DeadLetterQuery(Payload):
    after_id: int = Field(0, ge=0, le=MAX_POSITION)
    limit: int = Field(100, ge=1, le=1000)


class DeadLetter(BaseModel):
    id: int
    event_id: UUID | None
    subject: str
    stream_seq: int | None
    reason_code: str
    reason: str
    raw: str
    recorded_at: datetime


class DeadLetters(BaseModel):
    dead_letters: list[DeadLetter]


class StatsQuery(Payload):
    pass


class IngestCounters(BaseModel):
    running: bool = False
    batches: int = 0
    ingested: int = 0
    duplicates: int = 0
    redelivered: int = 0
    transient_failures: int = 0
    dead_lettered: dict[str, int] = Field(default_factory=dict)


class EventlogStats(BaseModel):
    ingest: IngestCounters = Field(description="This replica's ingest consumer, since it started.")
    org_events: int
    org_dead_letters: dict[str, int] = Field(description="The caller's org's dead letters by reason code.")


_ANY_PROTOCOL = tuple(Protocol)


def _subject(verb: str) -> str:
    return subjects.command("eventlog", verb)


APPEND = register_message(
    "event.append", _subject("events.append"), AppendEvent, Appended, protocols=_ANY_PROTOCOL,
    permission="events:create",
)
APPEND_BATCH = register_message(
    "event.append_batch", _subject("events.append_batch"), AppendBatch, AppendedBatch, protocols=_ANY_PROTOCOL,
    permission="events:create",
)
QUERY = register_message("event.query", _subject("events.query"), EventQuery, EventPage, permission="events:list")
HISTORY = register_message(
    "event.history", _subject("events.history"), ThingHistory, EventPage, permission="events:list"
)
TAIL = register_message("event.tail", _subject("events.tail"), EventTail, TailPage, permission="events:list")
DAILY_COUNTS = register_message(
    "event.daily_counts", _subject("analytics.daily_counts"), DailyCountsQuery, DailyCounts, permission="events:read"
)
REVENUE = register_message(
    "event.revenue", _subject("analytics.revenue"), RevenueQuery, Revenue, permission="events:read"
)
DEAD_LETTERS = register_message(
    "event.dead_letters", _subject("deadletters.list"), DeadLetterQuery, DeadLetters, permission="events:list"
)
STATS = register_message("eventlog.stats", _subject("stats"), StatsQuery, EventlogStats, permission="events:read")

DEAD_LETTER_SUBJECT = subjects.dead_letter("eventlog")
"""Where the ingest announces each event it could not store, with the reason (core NATS, after commit)."""
