"""The transactional outbox: events written with the state change, published after.

A service adds an outbox row in the same transaction as its rows; the relay
claims pending rows with `FOR UPDATE SKIP LOCKED` (safe with many replicas, no
"id > last seen" gaps), publishes each to JetStream with `Nats-Msg-Id` = envelope
id, and marks them sent after the publish ack, in the same claim transaction. A
relay that dies between ack and mark re-publishes the same id later, and
JetStream's duplicate window drops it, so downstream sees one message.

A row's envelope is JSON made once, when its event is (`EventMessages`), stored
and published as it is. Each row keeps the trace context it was staged under,
which the relay reads once for all the rows of a batch that share it.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from nats.js import JetStreamContext
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.kernel import subjects
from shared.kernel.envelope import Envelope, EnvelopeWriter, Protocol, decode_envelope, payload_json
from shared.kernel.errors import Unavailable
from shared.runtime.bus import store_in_stream
from shared.runtime.db import Database
from shared.runtime.sql import Sql, named

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("one.outbox")


def outbox_ddl(schema: str) -> list[str]:
    """The outbox table, for a service's first migration."""
    return [
        f"""CREATE TABLE {schema}.outbox (
            id uuid PRIMARY KEY,
            subject text NOT NULL,
            envelope bytea NOT NULL,
            trace_headers jsonb NOT NULL DEFAULT '{{}}',
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            sent_at timestamptz,
            attempts integer NOT NULL DEFAULT 0,
            last_error text
        )""",
        f"CREATE INDEX outbox_pending ON {schema}.outbox (created_at) WHERE sent_at IS NULL",
    ]


class OutboxMessage(NamedTuple):
    """A message to stage: its subject, and its envelope's id and JSON, which the outbox stores as they are."""

    subject: str
    id: UUID
    json: bytes

    @classmethod
    def of(cls, subject: str, envelope: Envelope) -> "OutboxMessage":
        """The message of an envelope made as a model (`Outbox.add`)."""
        return cls(subject, envelope.id, envelope.to_bytes())

    @property
    def envelope(self) -> Envelope:
        """The envelope, as every reader of the message will have it (validated from its JSON)."""
        return decode_envelope(self.json)


class EventMessages:
    """The messages of domain events in one org, over one protocol, by one actor, caused by `cause`.

    What they share is written once: their envelopes' common fields (`EnvelopeWriter`) and the subject of
    each event type. A batch create stages 500 events with one of these.
    """

    def __init__(self, protocol: Protocol, org_id: UUID, actor_id: UUID | None, cause: Envelope | None) -> None:
        self._writer = EnvelopeWriter(
            protocol=protocol,
            org_id=org_id,
            actor_id=actor_id,
            correlation_id=(cause.correlation_id or cause.id) if cause else None,
            causation_id=cause.id if cause else None,
        )
        self._protocol, self._org_id = protocol.value, org_id
        self._subjects: dict[str, str] = {}

    def message(self, event_type: str, payload: bytes) -> OutboxMessage:
        """A new event of `event_type`, carrying `payload` (JSON already: `EventPayload.to_bytes`)."""
        subject = self._subjects.get(event_type)
        if subject is None:
            subject = self._subjects[event_type] = subjects.event(self._protocol, self._org_id, event_type)
        return OutboxMessage(subject, *self._writer.write(event_type, payload))


def event_message(
    event_type: str, org_id: UUID, actor_id: UUID | None, payload: dict[str, Any], protocol: Protocol, cause: Envelope | None
) -> OutboxMessage:
    """The message of one domain event, caused by `cause`."""
    return EventMessages(protocol, org_id, actor_id, cause).message(event_type, payload_json(payload))


class Outbox:
    """Writes and relays the outbox rows of one schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.insert_select = (
            f"INSERT INTO {schema}.outbox (id, subject, envelope, trace_headers)"
            " SELECT m.id, m.subject, m.envelope, CAST(:outbox_trace_headers AS jsonb)"
            " FROM unnest(CAST(:outbox_ids AS uuid[]), CAST(:outbox_subjects AS text[]),"
            " CAST(:outbox_envelopes AS bytea[])) WITH ORDINALITY AS m(id, subject, envelope, n)"
        )
        """Stages messages given as array parameters (`rows_of`); `m.n` numbers them from 1, so a statement that
        writes rows and their events in one round trip can keep only the events of the rows it wrote."""
        self._insert = named(self.insert_select)
        self._claim = Sql(
            f"UPDATE {schema}.outbox o SET sent_at = clock_timestamp(), attempts = o.attempts + 1"
            f" FROM (SELECT id FROM {schema}.outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT $1"
            " FOR UPDATE SKIP LOCKED) pending WHERE o.id = pending.id"
            " RETURNING o.id, o.subject, o.envelope, o.trace_headers::text AS trace_headers, o.created_at"
        )
        """Claims a batch and marks it sent in one round trip; the relay publishes it before its transaction commits,
        so a batch whose relay dies unpublished is rolled back to pending (`_mark_failed` puts back one that failed).
        The trace headers come back as text, decoded once per distinct value (`_StagedUnder`), not once per row."""
        self._mark_failed = Sql(f"UPDATE {schema}.outbox SET sent_at = NULL, last_error = $2 WHERE id = $1")
        self._prune = text(
            f"DELETE FROM {schema}.outbox WHERE sent_at < clock_timestamp() - make_interval(secs => :seconds)"
        )
        self._pending = text(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL")

    def rows_of(self, messages: Sequence[OutboxMessage]) -> dict[str, Any]:
        """The parameters of `insert_select` for `messages` (the trace context goes with them)."""
        trace_headers: dict[str, str] = {}
        propagate.inject(trace_headers)
        return {
            "outbox_ids": [m.id for m in messages], "outbox_subjects": [m.subject for m in messages],
            "outbox_envelopes": [m.json for m in messages], "outbox_trace_headers": json.dumps(trace_headers),
        }

    async def add(self, session: AsyncConnection, subject: str, envelope: Envelope) -> None:
        """Stage a message inside the caller's transaction; the trace context goes with it."""
        await self.add_many(session, [OutboxMessage.of(subject, envelope)])

    async def add_many(self, session: AsyncConnection, messages: Sequence[OutboxMessage]) -> None:
        """Stage many messages with one statement over arrays (a batch of 500 events is one round trip and one set
        of parameters, not 500)."""
        if messages:
            await self._insert.execute(session, self.rows_of(messages))

    async def add_event(
        self,
        session: AsyncConnection,
        *,
        event_type: str,
        org_id: UUID,
        actor_id: UUID | None,
        payload: dict[str, Any],
        protocol: Protocol = Protocol.NATIVE,
        cause: Envelope | None = None,
    ) -> Envelope:
        """A domain event on `one.events.<protocol>.<org>.<type>`, caused by `cause`."""
        message = event_message(event_type, org_id, actor_id, payload, protocol, cause)
        await self.add_many(session, [message])
        return message.envelope

    async def pending(self, session: AsyncConnection) -> int:
        return (await session.execute(self._pending)).scalar_one()

    async def prune(self, session: AsyncConnection, older_than_seconds: float) -> int:
        return (await session.execute(self._prune, {"seconds": older_than_seconds})).rowcount


PublishHook = Callable[[UUID], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _StagedUnder:
    """The trace context that outbox rows were staged under, read once for all the rows of a batch that share it
    (every row of a staging transaction does: 500 for a batch create)."""

    headers: dict[str, str]
    parent: Context
    unsampled: bool
    """Staged by a request that is not sampled."""

    @classmethod
    def read(cls, trace_headers: str) -> "_StagedUnder":
        """The context of a row's `trace_headers` (as JSON text)."""
        headers = json.loads(trace_headers)
        parent = propagate.extract(headers)
        staged_under = trace.get_current_span(parent).get_span_context()
        return cls(headers, parent, staged_under.is_valid and not staged_under.trace_flags.sampled)


class OutboxRelay:
    """Publishes pending outbox rows; run one per service process (replicas are safe)."""

    def __init__(
        self,
        outbox: Outbox,
        db: Database,
        js: JetStreamContext,
        *,
        stream: str,
        batch_size: int = 200,
        poll_interval: float = 0.5,
        after_publish: PublishHook | None = None,
    ) -> None:
        self.outbox = outbox
        self.db = db
        self.js = js
        self.stream = stream
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.after_publish = after_publish  # fault injection point for reliability tests
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.published = 0
        self.failures = 0

    def wake(self) -> None:
        """Called after a commit that staged rows, so they go out without waiting for the poll."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Claim (marked sent) and publish one batch, in one transaction; returns how many rows were published."""
        async with self.db.transaction() as session:
            rows = sorted(await self.outbox._claim.fetch(session, self.batch_size), key=lambda row: row["created_at"])
            if not rows:
                return 0
            staged: dict[str, _StagedUnder] = {}  # by trace headers, which all the rows of a transaction share
            results = await asyncio.gather(*(self._publish(row, staged) for row in rows), return_exceptions=True)
            sent = 0
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, BaseException):
                    self.failures += 1
                    log.warning("outbox %s: publish of %s failed: %r", self.outbox.schema, row["id"], result)
                    await self.outbox._mark_failed.execute(session, row["id"], repr(result)[:500])
                else:
                    sent += 1
            self.published += sent
            return sent

    async def _publish(self, row: Any, known: dict[str, _StagedUnder]) -> None:
        staged = known.get(row["trace_headers"])
        if staged is None:  # read here, so that a row whose headers cannot be read fails alone
            staged = known[row["trace_headers"]] = _StagedUnder.read(row["trace_headers"])
        if staged.unsampled:
            # staged by a request that is not sampled: its headers go along as they are (the consumer keeps the
            # decision); a span would be built here only to be dropped
            await store_in_stream(self.js, row["subject"], row["envelope"], row["id"], stream=self.stream,
                                    trace_headers=staged.headers)
        else:
            with _tracer.start_as_current_span(f"{row['subject']} publish", context=staged.parent,
                                               kind=SpanKind.PRODUCER) as span:
                span.set_attribute("messaging.system", "nats")
                span.set_attribute("messaging.message.id", str(row["id"]))
                await store_in_stream(self.js, row["subject"], row["envelope"], row["id"], stream=self.stream)
        if self.after_publish is not None:
            await self.after_publish(row["id"])

    async def run(self) -> None:
        """Relay until `stop()`; then drain what is pending once more."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                while await self.relay_once() == self.batch_size:
                    pass
            except Unavailable as error:  # the database is restarting: the rows wait, the next poll tries again
                log.warning("outbox relay %s: %s", self.outbox.schema, error)
            except Exception:
                log.exception("outbox relay %s failed; retrying", self.outbox.schema)
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except TimeoutError:
                pass
        try:
            await self.relay_once()
        except Exception:
            log.exception("outbox relay %s: final flush failed", self.outbox.schema)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
