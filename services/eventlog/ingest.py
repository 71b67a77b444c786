"""The ingest: `ONE_EVENTS` -> Postgres, in batches, acked only after commit.

A durable pull consumer (shared by every replica) hands out up to
`eventlog_batch_size` messages; each is checked (`service.check_incoming`); the
valid ones go into `eventlog.events` with one multi-row insert per org (the
envelope id is unique: a redelivery or a duplicate adds nothing), the invalid
ones into `eventlog.dead_letters` with their reason, all in one transaction.
Only after the commit are the messages acked, the dead letters published on
`one.deadletter.eventlog` and the commit announced to waiting tails.

Failures:
- the database refuses one event (e.g. a NUL in a string): the batch is retried
  one event per transaction to find it, and it is dead-lettered with the reason;
- anything else (database down, ...): every message is NAKed with a delay that
  doubles per delivery; on its last allowed delivery (`eventlog_max_deliver`) an
  event is dead-lettered instead of dropped.
"""

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from opentelemetry import trace
from prometheus_client import Counter as PromCounter

from services.eventlog import repository
from services.eventlog.errors import InvalidEvent
from services.eventlog.schemas import DEAD_LETTER_SUBJECT, IngestCounters, committed_subject
from services.eventlog.service import IncomingEvent, check_incoming
from shared.kernel import subjects
from shared.runtime.db import app_url, plain_url
from shared.kernel.settings import Settings

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("one.eventlog.ingest")

_INGESTED = PromCounter("one_eventlog_ingested", "Events stored by the ingest")
_DUPLICATES = PromCounter("one_eventlog_duplicates", "Events the ingest had already stored")
_DEAD_LETTERS = PromCounter("one_eventlog_dead_letters", "Events the ingest dead-lettered", ["reason"])

Hook = Callable[[list[Msg]], Awaitable[None]]


@dataclass(slots=True)
class Rejected:
    msg: Msg
    reason_code: str
    reason: str


def _seq_and_deliveries(msg: Msg) -> tuple[int | None, int]:
    """From the ack subject `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, cheaply."""
    parts = (msg.reply or "").split(".")
    if len(parts) >= 9:
        return int(parts[-4]), int(parts[-5])
    return None, 1


class EventIngest:
    """One replica's share of the durable consumer; `start()` it, `stop()` it."""

    def __init__(
        self,
        settings: Settings,
        *,
        stream: str | None = None,
        subject: str = subjects.ALL_EVENTS,
        durable: str | None = None,
        database_url: str | None = None,
        before_commit: Hook | None = None,
        after_commit: Hook | None = None,
    ) -> None:
        self.settings = settings
        self.stream = stream or settings.events_stream
        self.subject = subject
        self.durable = durable or settings.eventlog_consumer
        self.database_url = database_url or app_url(settings)
        self.before_commit = before_commit  # fault injection points for reliability tests
        self.after_commit = after_commit
        self.counters = IngestCounters()
        self._nc: NatsClient | None = None
        self._sub: Any = None
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.settings.eventlog_ack_wait,
            max_deliver=self.settings.eventlog_max_deliver,
            max_ack_pending=self.settings.eventlog_max_ack_pending,
            filter_subject=self.subject,
        )

    async def start(self, nc: NatsClient) -> None:
        self._nc = nc
        self._pool = await asyncpg.create_pool(plain_url(self.database_url), min_size=1, max_size=2)
        self._sub = await nc.jetstream().pull_subscribe(
            self.subject,
            durable=self.durable,
            stream=self.stream,
            config=self.consumer_config(),
            pending_msgs_limit=4 * self.settings.eventlog_batch_size,
        )
        self._stopping.clear()
        self.counters.running = True
        self._task = asyncio.create_task(self.run(), name=f"eventlog-ingest-{self.durable}")

    async def stop(self) -> None:
        """Finish the batch in hand (it is committed and acked, or NAKed), then let go."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as error:  # the connection may already be closing
                log.debug("ingest unsubscribe: %r", error)
            self._sub = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self.counters.running = False

    async def run(self) -> None:
        """Two stages, so Python decodes the next batch while Postgres stores this one."""
        queue: asyncio.Queue[tuple[list[Msg], list[tuple[Msg, IncomingEvent]], list[Rejected]] | None]
        queue = asyncio.Queue(maxsize=2)
        writer = asyncio.create_task(self._write_loop(queue), name=f"eventlog-writer-{self.durable}")
        batch, wait = self.settings.eventlog_batch_size, self.settings.eventlog_fetch_wait
        try:
            while not self._stopping.is_set() and not writer.done():
                try:
                    msgs = await self._sub.fetch(batch, timeout=wait)
                except (TimeoutError, asyncio.TimeoutError, FetchTimeoutError):
                    continue
                except Exception as error:
                    if self._stopping.is_set():
                        break
                    log.warning("ingest fetch failed: %r", error)
                    await asyncio.sleep(min(1.0, wait * 10))
                    continue
                await queue.put((msgs, *self.check(msgs)))
        finally:
            await queue.put(None)
            await writer

    async def _write_loop(self, queue: asyncio.Queue) -> None:
        while (item := await queue.get()) is not None:
            try:
                await self.write(*item)
            except Exception:
                log.exception("ingest of %d events failed; they will be redelivered", len(item[0]))

    async def ingest(self, msgs: list[Msg]) -> None:
        """Check, store and ack one fetched batch."""
        await self.write(msgs, *self.check(msgs))

    def check(self, msgs: list[Msg]) -> tuple[list[tuple[Msg, IncomingEvent]], list[Rejected]]:
        events: list[tuple[Msg, IncomingEvent]] = []
        rejected: list[Rejected] = []
        for msg in msgs:
            seq, deliveries = _seq_and_deliveries(msg)
            if deliveries > 1:
                self.counters.redelivered += 1
            try:
                events.append((msg, check_incoming(msg.data, msg.subject, msg.headers, seq)))
            except InvalidEvent as error:
                rejected.append(Rejected(msg, error.reason_code, error.message))
        return events, rejected

    async def write(self, msgs: list[Msg], events: list[tuple[Msg, IncomingEvent]], rejected: list[Rejected]) -> None:
        """Store one checked batch in one transaction, then ack it."""
        with _tracer.start_as_current_span("eventlog ingest", attributes={"messaging.batch.message_count": len(msgs)}):
            try:
                positions = await self._store([e for _, e in events], rejected, msgs)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
                log.warning("ingest batch refused by the database (%r); isolating the event", error)
                await self._store_one_by_one(events, rejected)
                return
            except Exception as error:
                await self._retry_later(msgs, error)
                return
            await self._after_commit(msgs, [e for _, e in events], positions, rejected)

    async def _store(self, events: list[IncomingEvent], rejected: list[Rejected], msgs: list[Msg]) -> dict[Any, int]:
        """One transaction: the valid events per org, the dead letters; returns the new max position per org."""
        by_org: dict[Any, list[IncomingEvent]] = defaultdict(list)
        for event in events:
            by_org[event.org_id].append(event)
        latest: dict[Any, int] = {}
        stored = 0
        async with self._pool.acquire() as conn, conn.transaction():
            if by_org:
                await repository.lock_positions(conn)
            for org_id, org_events in by_org.items():
                new = await repository.insert_events(conn, org_id, org_events)
                stored += len(new)
                if new:
                    latest[org_id] = max(new)
            if rejected:
                await repository.insert_dead_letters(conn, [self._letter(r) for r in rejected])
            if self.before_commit is not None:
                await self.before_commit(msgs)
        self.counters.batches += 1
        self.counters.ingested += stored
        self.counters.duplicates += len(events) - stored
        _INGESTED.inc(stored)
        _DUPLICATES.inc(len(events) - stored)
        return latest

    async def _after_commit(
        self, msgs: list[Msg], events: list[IncomingEvent], latest: dict[Any, int], rejected: list[Rejected]
    ) -> None:
        if self.after_commit is not None:
            await self.after_commit(msgs)
        for msg in msgs:
            await msg.ack()
        for letter in rejected:
            await self._announce_dead_letter(letter)
        for org_id, position in latest.items():
            await self._nc.publish(committed_subject(org_id), str(position).encode())

    async def _store_one_by_one(self, events: list[tuple[Msg, IncomingEvent]], rejected: list[Rejected]) -> None:
        """A batch the database refused: store each event alone; the one it refuses again is dead-lettered."""
        for msg, event in events:
            try:
                latest = await self._store([event], [], [msg])
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
                rejected.append(Rejected(msg, "rejected_by_database", f"{type(error).__name__}: {error}"))
                continue
            except Exception as error:
                await self._retry_later([msg], error)
                continue
            await self._after_commit([msg], [event], latest, [])
        if rejected:
            try:
                await self._store([], rejected, [r.msg for r in rejected])
            except Exception as error:
                await self._retry_later([r.msg for r in rejected], error)
                return
            await self._after_commit([r.msg for r in rejected], [], {}, rejected)

    async def _retry_later(self, msgs: list[Msg], error: Exception) -> None:
        """Transient failure: NAK with a growing delay; the last allowed delivery is dead-lettered instead."""
        self.counters.transient_failures += 1
        log.warning("ingest could not store %d events (%r); retrying later", len(msgs), error)
        max_deliver = self.settings.eventlog_max_deliver
        for msg in msgs:
            _, deliveries = _seq_and_deliveries(msg)
            if max_deliver > 0 and deliveries >= max_deliver:
                await self._announce_dead_letter(Rejected(msg, "max_deliver", f"gave up after {deliveries} deliveries: {error!r}"))
                await msg.term()
                continue
            delay = min(self.settings.eventlog_retry_delay * 2 ** (deliveries - 1), self.settings.eventlog_retry_delay_max)
            await msg.nak(delay=delay)
        await asyncio.sleep(min(self.settings.eventlog_retry_delay, 1.0))

    def _letter(self, rejected: Rejected) -> dict[str, Any]:
        msg = rejected.msg
        seq, deliveries = _seq_and_deliveries(msg)
        raw = msg.data.decode(errors="replace").replace("\x00", "\\u0000")
        event_id = org_id = None
        try:
            envelope = json.loads(raw)
            event_id, org_id = _uuid_or_none(envelope.get("id")), _uuid_or_none(envelope.get("org_id"))
        except (ValueError, AttributeError):
            pass
        return {
            "dedup_key": f"{self.stream}:{seq}" if seq is not None else f"id:{event_id or time.time_ns()}",
            "org_id": org_id,
            "event_id": event_id,
            "subject": msg.subject,
            "stream_seq": seq,
            "reason_code": rejected.reason_code,
            "reason": rejected.reason,
            "raw": raw,
            "deliveries": deliveries,
        }

    async def _announce_dead_letter(self, rejected: Rejected) -> None:
        letter = self._letter(rejected)
        self.counters.dead_lettered[rejected.reason_code] = self.counters.dead_lettered.get(rejected.reason_code, 0) + 1
        _DEAD_LETTERS.labels(rejected.reason_code).inc()
        body = {k: letter[k] for k in ("subject", "stream_seq", "reason_code", "reason", "raw", "deliveries")}
        body |= {"event_id": str(letter["event_id"] or ""), "org_id": str(letter["org_id"] or "")}
        await self._nc.publish(DEAD_LETTER_SUBJECT, json.dumps(body).encode())


def _uuid_or_none(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None

