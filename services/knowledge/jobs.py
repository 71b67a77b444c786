"""Background work of each knowledge replica: the graph-event trigger and the ingestion workers.

- `Trigger` is a durable JetStream pull consumer of the things' create/update/delete events and
  of `content_changed`.
  Each batch becomes (debounced) jobs in one transaction, and is acked only after it commits,
  so a crash redelivers instead of losing a change.
- `Workers` claim due jobs with `FOR UPDATE SKIP LOCKED` (replicas share the queue; one job per
  thing runs at a time), run them
  (`ingest.ingest_thing`), and record the outcome. A transient failure (the graph or the
  embedding endpoint unavailable) is retried with backoff up to `knowledge_ingest_max_attempts`;
  anything else fails the job with its reason, visible through `knowledge.ingest.status`.
  Jobs left `running` by a dead replica are queued again after a lease; GC runs hourly.
"""

import asyncio
import logging
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.knowledge import gc, ingest, repository_jobs as jobs_repo
from shared.kernel import subjects
from shared.kernel.envelope import Envelope
from shared.kernel.errors import OneError, Unavailable
from shared.kernel.ontology import EventType, ThingType
from shared.runtime.consumer import ConsumerPolicy, DurableConsumer, Poison
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

TRIGGER_EVENTS = (
    EventType.ENTITY_CREATED, EventType.ENTITY_UPDATED, EventType.ENTITY_DELETED, EventType.COURSE_CREATED,
    EventType.CLONE_CREATED, EventType.CLONE_UPDATED, EventType.AGENT_CREATED, EventType.TOKEN_CREATED,
    EventType.CONTENT_EVENT,
)
"""The graph's thing events, and the spec's `content_changed` ("on source updates triggers
re-embedding"), which the event log stores as `content_event` with `metadata.action`."""
CONTENT_CHANGES = frozenset({"created", "updated", "deleted"})
"""The `content_event` actions of `content_changed`; views, shares and likes change no text."""
_THING_TYPES = frozenset(t.value for t in ThingType)
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
"""Back-off of a transiently failed job: base x 2^(attempt - 1), at most the max."""
LEASE_SECONDS = 600.0
IDLE_POLL = 0.5
"""Seconds an idle worker waits before looking for due jobs again (a debounced job comes due
without any event; this replica's own trigger and `knowledge.ingest` wake the workers at once)."""
GC_INTERVAL = 3600.0
_CONSUMER = "knowledge-ingest"


def job_for_event(event: Envelope, debounce_ms: int) -> dict[str, Any] | None:
    """The job an event asks for, or None for events about anything but a thing's text.

    An event-triggered job asks for no privacy mode of its own (`vector_only` and `store_text`
    false): the thing keeps the mode it was last ingested with (see ingest.privacy_of). A
    `content_changed` re-reads the thing even when its action is `deleted`: only the graph's
    `entity_deleted` purges, so an event claiming a deletion never archives a live thing's knowledge."""
    payload = event.payload
    metadata = payload.get("metadata") or {}
    target, target_type = payload.get("target_id"), payload.get("target_type")
    if event.type == EventType.CONTENT_EVENT:
        if metadata.get("action") not in CONTENT_CHANGES:
            return None
        target_type = target_type if target_type in _THING_TYPES else metadata.get("contentType")
    if event.org_id is None or target is None or target_type not in _THING_TYPES:
        return None
    deleted = event.type == EventType.ENTITY_DELETED
    return {
        "org_id": event.org_id, "thing_id": target, "action": "purge" if deleted else "ingest",
        "fields": None, "force": False, "vector_only": False, "store_text": False, "trigger": f"event:{event.type}",
        "actor_id": event.actor_id, "delay_ms": 0 if deleted else debounce_ms,
    }


class Trigger:
    """Graph events -> debounced ingestion jobs, on the platform's one consumer (`shared.runtime.consumer`).

    A batch's jobs are queued in one transaction; the consumer acks the batch after
    it commits, NAKs it with backoff when it cannot (the database down), and
    dead-letters what is not an envelope or keeps failing (`knowledge_trigger_*`).
    """

    def __init__(self, runtime: ServiceRuntime, workers: "Workers") -> None:
        self.runtime = runtime
        self.workers = workers
        settings = runtime.settings
        self.consumer = DurableConsumer(
            "knowledge",
            ConsumerPolicy(
                durable=_CONSUMER,
                subjects=tuple(subjects.events_filter(event_type=t.value) for t in TRIGGER_EVENTS),
                stream=settings.events_stream,
                batch_size=200,
                ack_wait=settings.knowledge_trigger_ack_wait,
                max_deliver=settings.knowledge_trigger_max_deliver,
                retry_delay=settings.knowledge_trigger_retry_delay,
                retry_delay_max=settings.knowledge_trigger_retry_delay_max,
            ),
            self._queue_jobs,
        )

    async def start(self, nc: NatsClient) -> None:
        await self.consumer.start(nc)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def _queue_jobs(self, msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        latest: dict[tuple[Any, Any], dict[str, Any]] = {}
        refused: list[Poison] = []
        for msg in msgs:
            try:
                job = job_for_event(Envelope.model_validate_json(msg.data), self.runtime.settings.knowledge_debounce_ms)
            except ValueError as error:
                refused.append(Poison(msg, "malformed_envelope", f"not an envelope: {error}"[:500]))
                continue
            if job is not None:
                latest[(job["org_id"], job["thing_id"])] = job
        if latest:
            async with self.runtime.db.transaction() as session:
                await jobs_repo.enqueue(session, list(latest.values()))
        if any(job["delay_ms"] == 0 for job in latest.values()):
            self.workers.wake.set()
        return refused


class Workers:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        count = self.runtime.settings.knowledge_ingest_workers
        self._tasks = [asyncio.create_task(self._work(), name=f"knowledge-worker-{i}") for i in range(count)]
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="knowledge-housekeeping"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            try:
                ran = await self.run_one()
            except Exception:
                log.exception("knowledge worker loop")
                ran = False
            if not ran:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=IDLE_POLL)
                except TimeoutError:
                    pass

    async def run_one(self) -> bool:
        """Claim and run one due job; False when none is due."""
        db = self.runtime.db
        async with db.transaction() as session:
            job = await jobs_repo.claim(session)
        if job is None:
            return False
        try:
            outcome = await ingest.ingest_thing(self.runtime, job)
        except Unavailable as error:  # transient: the graph, the bus or the embedding endpoint
            await self._retry(job, error)
        except Exception as error:
            if not isinstance(error, OneError):
                log.exception("ingest job %s failed", job.id)
            async with db.transaction() as session:
                await jobs_repo.finish(session, job.id, "failed", error=_describe(error))
        else:
            async with db.transaction() as session:
                await jobs_repo.finish(session, job.id, outcome.status, chunks=outcome.chunks, error=outcome.note)
        return True

    async def _retry(self, job: Any, error: Exception) -> None:
        async with self.runtime.db.transaction() as session:
            if job.attempts >= self.runtime.settings.knowledge_ingest_max_attempts:
                await jobs_repo.finish(session, job.id, "failed", error=_describe(error))
            else:
                await jobs_repo.retry_later(session, job, backoff(job.attempts), _describe(error))

    async def _housekeeping(self) -> None:
        while True:
            try:
                async with self.runtime.db.transaction() as session:
                    await jobs_repo.requeue_stale(session, LEASE_SECONDS)
                    orgs = await jobs_repo.recent_orgs(session, hours=2 * GC_INTERVAL / 3600)
                for org_id in orgs:
                    await gc.collect(self.runtime.background(org_id), None)
            except Exception:
                log.exception("knowledge housekeeping")
            await asyncio.sleep(GC_INTERVAL)


def backoff(attempts: int) -> float:
    """Seconds before a job that failed transiently on its `attempts`-th run is tried again."""
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2.0 ** (attempts - 1))


def _describe(error: Exception) -> str:
    if isinstance(error, OneError):
        return f"{error.code}: {error.message}"[:1000]
    return f"{type(error).__name__}: {error}"[:1000]
