"""A 3-node NATS cluster survives losing a node: ONE_EVENTS at 3 replicas, the event log ingesting
under a steady publish load, the stream leader SIGKILLed mid-load and restarted. Every acknowledged
event is committed exactly once in Postgres, and publishing goes on while the node is down."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from uuid import UUID

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from services.eventlog.ingest import EventIngest
from services.eventlog.settings import EventlogSettings
from shared.kernel import subjects
from shared.kernel.envelope import Envelope
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.bus import ensure_events_stream
from shared.runtime.db import plain_url
from tests.deploy.cluster import NatsCluster
from tests.polling import until

pytestmark = pytest.mark.reliability

RATE = 100  # events per second, steady
BEFORE, AFTER = 2.0, 2.0  # s of load before the kill, and after the restart
MAX_OUTAGE, STILL_DOWN = 30.0, 2.0
"""The node stays down until publishing has resumed without it (a leader election takes ~4.5 s,
8 s and more on a loaded machine), at most `MAX_OUTAGE` s, then `STILL_DOWN` s more."""


@pytest.fixture
def cluster(tmp_path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "cluster")
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def cluster_settings(migrated: Settings, cluster: NatsCluster) -> EventlogSettings:
    return EventlogSettings(
        **{
            **migrated.model_dump(),
            "nats_url": ",".join(cluster.urls),
            "events_stream_replicas": 3,
            "eventlog_ack_wait": 2.0,  # an ack lost with the node comes back in 2 s, not 30
            "eventlog_batch_size": 200,
        }
    )


async def _connect(cluster: NatsCluster, name: str) -> NatsClient:
    return await nats.connect(
        servers=cluster.urls, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.1, connect_timeout=2
    )


@pytest.fixture
async def connections(cluster: NatsCluster) -> AsyncIterator[tuple[NatsClient, NatsClient]]:
    publisher, consumer = await _connect(cluster, "publisher"), await _connect(cluster, "ingest")
    yield publisher, consumer
    for nc in (publisher, consumer):
        await nc.close()


async def _create_stream(js: JetStreamContext, settings: Settings) -> None:
    """The cluster needs a JetStream meta leader before it takes a stream: retry until it has one."""
    deadline = time.monotonic() + 20
    while True:
        try:
            await ensure_events_stream(js, settings)
            info = await js.stream_info(settings.events_stream)
            if info.cluster and info.cluster.leader and len(info.cluster.replicas or []) == 2:
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("ONE_EVENTS never got a leader and two replicas")
        await asyncio.sleep(0.2)


class Publisher:
    """Publishes one event every 1/RATE s; a failed publish is retried with the same Nats-Msg-Id."""

    def __init__(self, js: JetStreamContext, org_id: UUID, stream: str) -> None:
        self.js, self.org_id, self.stream = js, org_id, stream
        self.acked: dict[UUID, float] = {}  # event id -> when JetStream acked it
        self.attempted: set[UUID] = set()
        self.failures = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        n = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            n += 1
            event = Envelope(type="payment_event", org_id=self.org_id, actor_id=self.org_id,
                             payload={"metadata": {"protocol": "x402", "status": "processed", "amount": n}})
            subject = subjects.event(event.protocol.value, event.org_id, event.type)
            self.attempted.add(event.id)
            while not self._stop.is_set():
                try:
                    await self.js.publish(subject, event.to_bytes(), stream=self.stream, timeout=1.0,
                                          headers={"Nats-Msg-Id": str(event.id)})
                    self.acked[event.id] = time.monotonic()
                    break
                except Exception:  # timeout, no responders, reconnecting: the same message again
                    self.failures += 1
                    await asyncio.sleep(0.05)
            next_at += 1 / RATE
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def test_cluster_survives_a_node_kill_under_load(
    cluster: NatsCluster, cluster_settings: EventlogSettings, connections: tuple[NatsClient, NatsClient]
) -> None:
    publisher_nc, ingest_nc = connections
    await _create_stream(publisher_nc.jetstream(timeout=5), cluster_settings)

    org_id = uuid7()
    ingest = EventIngest(cluster_settings)
    await ingest.start(ingest_nc)
    publisher = Publisher(publisher_nc.jetstream(timeout=5), org_id, cluster_settings.events_stream)
    load = asyncio.create_task(publisher.run())
    admin = await asyncpg.connect(plain_url(cluster_settings.database_url))
    try:
        await asyncio.sleep(BEFORE)
        info = await publisher_nc.jetstream(timeout=5).stream_info(cluster_settings.events_stream)
        assert info.config.num_replicas == 3
        victim = cluster.node(info.cluster.leader)  # the stream leader: the node whose loss hurts most
        acked_before_kill = len(publisher.acked)
        killed_at = time.monotonic()
        victim.kill()
        try:
            await until(lambda: max(publisher.acked.values(), default=0.0) >= killed_at, MAX_OUTAGE, interval=0.1)
        except AssertionError:
            pytest.fail(f"publishing stopped while a node was down (nothing acknowledged in {MAX_OUTAGE:.0f}s)")
        await asyncio.sleep(STILL_DOWN)
        restarted_at = time.monotonic()
        await asyncio.to_thread(victim.start)
        await asyncio.sleep(AFTER)
        publisher.stop()
        await asyncio.wait_for(load, 10)

        acked = set(publisher.acked)
        during_outage = [i for i, t in publisher.acked.items() if killed_at <= t < restarted_at]
        first_after_kill = min((t for t in publisher.acked.values() if t >= killed_at), default=None)
        print(f"\nfirst ack after the kill: {first_after_kill - killed_at if first_after_kill else None}")
        assert acked_before_kill > 0

        async def rows() -> dict[UUID, int]:
            found = await admin.fetch(
                "SELECT id, count(*) AS n FROM eventlog.events WHERE org_id = $1 GROUP BY id", org_id
            )
            return {r["id"]: r["n"] for r in found}

        deadline = time.monotonic() + 30
        while not acked <= set(stored := await rows()):
            assert time.monotonic() < deadline, f"{len(acked - set(stored))} acked events never committed"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let late redeliveries land, to catch a second copy
        stored = await rows()
        assert acked <= set(stored), "an acknowledged event was lost"
        assert set(stored) <= publisher.attempted, "an event nobody published was stored"
        assert all(n == 1 for n in stored.values()), "an event was stored twice"
        print(
            f"\nacked {len(acked)} ({len(during_outage)} during the {restarted_at - killed_at:.0f}s outage), "
            f"publish retries {publisher.failures}, stored {len(stored)}, ingest {ingest.counters}"
        )
    finally:
        publisher.stop()
        if not load.done():
            load.cancel()
        await ingest.stop()
        await admin.close()
