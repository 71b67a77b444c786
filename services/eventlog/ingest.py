"""The ingest: `ONE_EVENTS` -> Postgres, in batches, acked only after commit.

A durable pull consumer (shared by every replica) hands out up to
`eventlog_batch_size` messages; each is checked (`checks.check_incoming`); the
valid ones go into `eventlog.events` with one multi-row insert per org (the
envelope id is unique: a redelivery or a duplicate adds nothing), the invalid
ones into `eventlog.dead_letters` with their reason, all in one transaction.
Only after the commit are the messages acked, the dead letters published on
`one.deadletter.eventlog` and the commit announced to waiting tails.

It runs on the platform's one consumer (`shared.runtime.consumer`), which acks,
NAKs with backoff and dead-letters; what is the event log's own here is what a
batch means. Failures:
- the database refuses one event (e.g. a NUL in a string): the batch is retried
  one event per transaction to find it, and it is dead-lettered with the reason;
- anything else (database down, ...): the consumer NAKs the batch with a delay
  that doubles per delivery; on its last allowed delivery (`eventlog_max_deliver`)
  an event is dead-lettered instead of dropped.
"""

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig
from opentelemetry import trace
from prometheus_client import Counter as PromCounter

from services.eventlog import repository
from services.eventlog.checks import check_incoming
from services.eventlog.models import IncomingEvent
from services.eventlog.settings import EventlogSettings
from services.eventlog.tail import committed_subject
from shared.contracts.eventlog import IngestCounters, InvalidEvent
from shared.kernel import subjects
from shared.runtime.consumer import ConsumerPolicy, DurableConsumer, Poison, dead_letter_record, delivery_info
from shared.runtime.db import app_url, plain_url

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("one.eventlog.ingest")

_INGESTED = PromCounter("one_eventlog_ingested", "Events stored by the ingest")
_DUPLICATES = PromCounter("one_eventlog_duplicates", "Events the ingest had already stored")

Hook = Callable[[list[Msg]], Awaitable[None]]
Checked = tuple[list[tuple[Msg, IncomingEvent]], list[Poison]]


class EventIngest:
    """One replica's share of the durable consumer; `start()` it, `stop()` it."""

    def __init__(
        self,
        settings: EventlogSettings,
        *,
        stream: str | None = None,
        subject: str = subjects.ALL_EVENTS,
        durable: str | None = None,
        database_url: str | None = None,
        before_commit: Hook | None = None,
        after_commit: Hook | None = None,
    ) -> None:
        self.database_url = database_url or app_url(settings)
        self.before_commit = before_commit  # fault injection point for reliability tests (inside the transaction)
        policy = ConsumerPolicy(
            durable=durable or settings.eventlog_consumer,
            subjects=(subject,),
            stream=stream or settings.events_stream,
            batch_size=settings.eventlog_batch_size,
            fetch_wait=settings.eventlog_fetch_wait,
            ack_wait=settings.eventlog_ack_wait,
            max_deliver=settings.eventlog_max_deliver,
            max_ack_pending=settings.eventlog_max_ack_pending,
            retry_delay=settings.eventlog_retry_delay,
            retry_delay_max=settings.eventlog_retry_delay_max,
        )
        self.consumer = DurableConsumer("eventlog", policy, self.write, prepare=self.check, after_commit=after_commit)
        self.ingested = 0
        self.duplicates = 0
        self._nc: NatsClient | None = None
        self._pool: asyncpg.Pool | None = None

    @property
    def counters(self) -> IngestCounters:
        consumer = self.consumer.counters
        return IngestCounters(
            running=self.consumer.running,
            batches=consumer.batches,
            ingested=self.ingested,
            duplicates=self.duplicates,
            redelivered=consumer.redelivered,
            transient_failures=consumer.transient_failures,
            dead_lettered=dict(consumer.dead_lettered),
        )

    def consumer_config(self) -> ConsumerConfig:
        return self.consumer.policy.jetstream_config()

    async def start(self, nc: NatsClient) -> None:
        self._nc = nc
        self._pool = await asyncpg.create_pool(plain_url(self.database_url), min_size=1, max_size=2)
        await self.consumer.start(nc)

    async def stop(self) -> None:
        """Finish the batch in hand (it is committed and acked, or NAKed), then let go."""
        await self.consumer.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def check(self, msgs: list[Msg]) -> Checked:
        """Decode and check a fetched batch: the storable events, and the ones refused for good."""
        events: list[tuple[Msg, IncomingEvent]] = []
        rejected: list[Poison] = []
        for msg in msgs:
            seq, _ = delivery_info(msg)
            try:
                events.append((msg, check_incoming(msg.data, msg.subject, msg.headers, seq)))
            except InvalidEvent as error:
                rejected.append(Poison(msg, error.reason_code, error.message))
        return events, rejected

    async def write(self, checked: Checked, msgs: list[Msg]) -> list[Poison]:
        """Store one checked batch in one transaction; the consumer acks it after this returns."""
        events, rejected = checked
        with _tracer.start_as_current_span("eventlog ingest", attributes={"messaging.batch.message_count": len(msgs)}):
            try:
                latest = await self._store([e for _, e in events], rejected, msgs)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
                log.warning("ingest batch refused by the database (%r); isolating the event", error)
                return await self._store_one_by_one(events, rejected)
        await self._announce(latest)
        return rejected

    async def _store(self, events: list[IncomingEvent], rejected: list[Poison], msgs: list[Msg]) -> dict[Any, int]:
        """One transaction: the valid events per org, the dead letters; returns the new max position per org."""
        by_org: dict[Any, list[IncomingEvent]] = defaultdict(list)
        for event in events:
            by_org[event.org_id].append(event)
        latest: dict[Any, int] = {}
        stored = 0
        stream = self.consumer.policy.stream
        async with self._pool.acquire() as conn, conn.transaction():
            if by_org:
                await repository.lock_positions(conn)
            for org_id, org_events in by_org.items():
                new = await repository.insert_events(conn, org_id, org_events)
                stored += len(new)
                if new:
                    latest[org_id] = max(new)
            if rejected:
                await repository.insert_dead_letters(conn, [dead_letter_record(stream, r) for r in rejected])
            if self.before_commit is not None:
                await self.before_commit(msgs)
        self.ingested += stored
        self.duplicates += len(events) - stored
        _INGESTED.inc(stored)
        _DUPLICATES.inc(len(events) - stored)
        return latest

    async def _store_one_by_one(self, events: list[tuple[Msg, IncomingEvent]], rejected: list[Poison]) -> list[Poison]:
        """A batch the database refused: store each event alone; the one it refuses again is dead-lettered.

        Any other failure raises, and the consumer retries the whole batch later: the
        events stored meanwhile come back as duplicates, which add nothing.
        """
        for msg, event in events:
            try:
                await self._announce(await self._store([event], [], [msg]))
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
                rejected.append(Poison(msg, "rejected_by_database", f"{type(error).__name__}: {error}"))
        if rejected:
            await self._store([], rejected, [r.msg for r in rejected])
        return rejected

    async def _announce(self, latest: dict[Any, int]) -> None:
        """Tell waiting tails how far each org's log is now committed."""
        for org_id, position in latest.items():
            await self._nc.publish(committed_subject(org_id), str(position).encode())
