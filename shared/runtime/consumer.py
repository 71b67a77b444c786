"""The one JetStream consumer: durable, pulled in batches, acked only after the handler committed.

Every service that reacts to the event stream (the event log's ingest, knowledge's
ingestion trigger, ...) runs a `DurableConsumer`, so they all fail the same way:

- the handler stores what the batch means and commits; only then is the batch
  acked. A crash before the ack redelivers it, so handlers are idempotent;
- a message the handler refuses for good (`Poison`) is dead-lettered with its
  reason on `one.deadletter.<service>` and acked: it is never redelivered, never
  dropped silently, and counted in `one_consumer_dead_letters`. The dead letter
  goes into the `ONE_DEADLETTERS` stream and is acked by it before the message is,
  so it survives until the event log stores it (`one events deadletters`);
- a handler that raises (database down, a service unavailable) has the whole
  batch NAKed with a delay that doubles per delivery (JetStream's `BackOff` only
  applies to ack timeouts: a bare NAK would come back at once, a hot loop); on its
  last allowed delivery (`max_deliver`) a message is dead-lettered instead.

The fetch and a synchronous `prepare` step (decoding, checking) run while the
previous batch is being stored, so the CPU and the database work side by side.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, FetchTimeoutError
from prometheus_client import Counter as PromCounter

from shared.kernel import subjects

log = logging.getLogger(__name__)

_DEAD_LETTERS = PromCounter("one_consumer_dead_letters", "Messages a consumer dead-lettered", ["consumer", "reason"])
_REDELIVERED = PromCounter("one_consumer_redelivered", "Messages a consumer received more than once", ["consumer"])
_RETRIES = PromCounter("one_consumer_transient_failures", "Batches a consumer NAKed to retry later", ["consumer"])

P = TypeVar("P")
DEAD_LETTER_RETRIES = 5


@dataclass(frozen=True, slots=True)
class ConsumerPolicy:
    """Where a consumer reads and how it retries; every number comes from the service's settings."""

    durable: str
    subjects: tuple[str, ...]  # filter subjects (NATS wildcards)
    stream: str
    batch_size: int = 100
    fetch_wait: float = 1.0  # seconds an idle fetch waits: bounds the latency it adds
    ack_wait: float = 30.0  # seconds JetStream waits for an ack before redelivering
    max_deliver: int = 20  # deliveries before a failing message is dead-lettered
    max_ack_pending: int = 1000
    retry_delay: float = 0.5  # first NAK delay; doubles per delivery
    retry_delay_max: float = 30.0

    def jetstream_config(self) -> ConsumerConfig:
        one = len(self.subjects) == 1
        return ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            # Spare deliveries past ours: a message whose dead letter could not be sent comes back to try again.
            max_deliver=self.max_deliver + DEAD_LETTER_RETRIES if self.max_deliver > 0 else -1,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.subjects[0] if one else None,
            filter_subjects=None if one else list(self.subjects),
        )

    def retry_delay_for(self, deliveries: int) -> float:
        return min(self.retry_delay * 2 ** (deliveries - 1), self.retry_delay_max)


@dataclass(slots=True)
class Poison:
    """A message its handler refuses for good, and why (`reason_code` is a stable label)."""

    msg: Msg
    reason_code: str
    reason: str


@dataclass
class ConsumerCounters:
    batches: int = 0
    redelivered: int = 0
    transient_failures: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)


def delivery_info(msg: Msg) -> tuple[int | None, int]:
    """(stream sequence, deliveries) from the ack subject `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`."""
    parts = (msg.reply or "").split(".")
    if len(parts) >= 9:
        return int(parts[-4]), int(parts[-5])
    return None, 1


def dead_letter_record(stream: str, poison: Poison) -> dict[str, Any]:
    """What a dead letter says: where the message came from, why it was refused, and the message itself."""
    msg = poison.msg
    seq, deliveries = delivery_info(msg)
    raw = msg.data.decode(errors="replace").replace("\x00", "\\u0000")
    event_id = org_id = None
    try:
        envelope = json.loads(raw)
        event_id, org_id = _uuid_or_none(envelope.get("id")), _uuid_or_none(envelope.get("org_id"))
    except (ValueError, AttributeError):
        pass
    return {
        "dedup_key": f"{stream}:{seq}" if seq is not None else f"id:{event_id or time.time_ns()}",
        "org_id": org_id,
        "event_id": event_id,
        "subject": msg.subject,
        "stream_seq": seq,
        "reason_code": poison.reason_code,
        "reason": poison.reason,
        "raw": raw,
        "deliveries": deliveries,
    }


Handle = Callable[[P, list[Msg]], Awaitable[Sequence[Poison]]]
Hook = Callable[[list[Msg]], Awaitable[None]]


class DurableConsumer(Generic[P]):
    """One replica's share of a durable pull consumer; `start()` it, `stop()` it.

    `handle(prepared, msgs)` stores the batch and commits, returning the messages it
    refuses for good; `prepare(msgs)` (optional, synchronous) decodes and checks a
    batch before it is handed over. `after_commit` runs after a batch is handled and
    before it is acked (a fault-injection point for the reliability tests).
    """

    def __init__(
        self,
        service: str,
        policy: ConsumerPolicy,
        handle: Handle[P],
        *,
        prepare: Callable[[list[Msg]], P] | None = None,
        after_commit: Hook | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        self.handle = handle
        self.prepare: Callable[[list[Msg]], Any] = prepare or (lambda msgs: msgs)
        self.after_commit = after_commit
        self.counters = ConsumerCounters()
        self._nc: NatsClient | None = None
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, nc: NatsClient) -> None:
        self._nc = nc
        policy, js = self.policy, nc.jetstream()
        try:  # create, or update one an older version made (settings or filters may have changed since)
            await js.add_consumer(policy.stream, policy.jetstream_config())
        except BadRequestError as error:  # a change JetStream cannot apply in place (e.g. the deliver policy)
            log.warning("%s: could not update the consumer's config, using it as it is: %r", policy.durable, error)
        self._sub = await js.pull_subscribe_bind(
            durable=policy.durable, stream=policy.stream, pending_msgs_limit=4 * policy.batch_size
        )
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-consumer-{policy.durable}")

    async def stop(self) -> None:
        """Finish the batch in hand (handled and acked, or NAKed), then let go."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as error:  # the connection may already be closing
                log.debug("%s unsubscribe: %r", self.policy.durable, error)
            self._sub = None

    async def _run(self) -> None:
        """Two stages: fetch and prepare the next batch while the handler stores this one."""
        queue: asyncio.Queue[tuple[list[Msg], Any] | None] = asyncio.Queue(maxsize=2)
        worker = asyncio.create_task(self._handle_loop(queue), name=f"{self.service}-handler-{self.policy.durable}")
        batch, wait = self.policy.batch_size, self.policy.fetch_wait
        try:
            while not self._stopping.is_set() and not worker.done():
                try:
                    msgs = await self._sub.fetch(batch, timeout=wait)
                except (TimeoutError, asyncio.TimeoutError, FetchTimeoutError):
                    continue
                except Exception as error:
                    if self._stopping.is_set():
                        break
                    log.warning("%s fetch failed: %r", self.policy.durable, error)
                    await asyncio.sleep(min(1.0, wait * 10))
                    continue
                if not msgs:  # a fetch can end with a status and no message
                    continue
                self._count_redeliveries(msgs)
                await queue.put((msgs, self.prepare(msgs)))
        finally:
            await queue.put(None)
            await worker

    async def _handle_loop(self, queue: "asyncio.Queue[tuple[list[Msg], Any] | None]") -> None:
        while (item := await queue.get()) is not None:
            try:
                await self.process(*item)
            except Exception:
                log.exception("%s: batch of %d failed after handling; it will be redelivered", self.policy.durable, len(item[0]))

    async def process(self, msgs: list[Msg], prepared: Any) -> None:
        """Handle one batch; ack it after the handler committed, or NAK it to retry later."""
        try:
            poison = await self.handle(prepared, msgs)
        except Exception as error:
            await self._retry_later(msgs, error)
            return
        self.counters.batches += 1
        if self.after_commit is not None:
            await self.after_commit(msgs)
        refused = {id(p.msg) for p in poison}
        for msg in msgs:
            if id(msg) not in refused:
                await msg.ack()
        for p in poison:
            await self.dead_letter(p)
            await p.msg.ack()

    async def dead_letter(self, poison: Poison) -> None:
        """Send a refused message, with its reason, into the dead-letter stream (`one.deadletter.<service>`), and
        count it. If the stream does not take it this raises, so the message is not acked and comes back."""
        letter = dead_letter_record(self.policy.stream, poison)
        body = {k: letter[k] for k in ("subject", "stream_seq", "reason_code", "reason", "raw", "deliveries")}
        body |= {"event_id": str(letter["event_id"] or ""), "org_id": str(letter["org_id"] or ""),
                 "consumer": self.policy.durable, "dedup_key": f"{self.policy.durable}/{letter['dedup_key']}"}
        await self._nc.jetstream().publish(subjects.dead_letter(self.service), json.dumps(body).encode(),
                                           headers={"Nats-Msg-Id": body["dedup_key"]})
        counters = self.counters.dead_lettered
        counters[poison.reason_code] = counters.get(poison.reason_code, 0) + 1
        _DEAD_LETTERS.labels(self.policy.durable, poison.reason_code).inc()
        log.warning("%s dead-lettered %s: %s", self.policy.durable, poison.msg.subject, poison.reason)

    async def _retry_later(self, msgs: list[Msg], error: Exception) -> None:
        """Transient failure: NAK with a growing delay; the last allowed delivery is dead-lettered instead."""
        self.counters.transient_failures += 1
        _RETRIES.labels(self.policy.durable).inc()
        log.warning("%s could not handle %d messages (%r); retrying later", self.policy.durable, len(msgs), error)
        max_deliver = self.policy.max_deliver
        for msg in msgs:
            _, deliveries = delivery_info(msg)
            if max_deliver > 0 and deliveries >= max_deliver:
                await self.dead_letter(Poison(msg, "max_deliver", f"gave up after {deliveries} deliveries: {error!r}"))
                await msg.term()
                continue
            await msg.nak(delay=self.policy.retry_delay_for(deliveries))
        await asyncio.sleep(min(self.policy.retry_delay, 1.0))

    def _count_redeliveries(self, msgs: list[Msg]) -> None:
        again = sum(1 for msg in msgs if delivery_info(msg)[1] > 1)
        if again:
            self.counters.redelivered += again
            _REDELIVERED.labels(self.policy.durable).inc(again)


def _uuid_or_none(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None
