"""Scale-out: replicas of a service share its queue group and replicas of the event-log ingest share
its durable consumer. Under load every message is handled once and the work is split between them."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from services.eventlog.ingest import EventIngest
from services.eventlog.settings import EventlogSettings
from shared.kernel.envelope import AuthContext, Envelope, Payload, register_message
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.db import plain_url
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime
from tests.eventlog.conftest import wait_until


class Work(Payload):
    n: int


class Done(Payload):
    n: int
    replica: str


WORK = register_message("probe.deploy_work", "one.probe.deploy_work", Work, Done)
REQUESTS = 300
EVENTS = 3000


def _replica(name: str, handled: Counter, settings: Settings) -> ServiceRuntime:
    """One replica of the probe service: its own router (as a separate process would have), same queue group."""
    router = ServiceRouter("probe")

    @router.handler(WORK)
    async def work(ctx: WorkContext, payload: Work) -> Done:
        handled[(name, payload.n)] += 1
        # a state change with an outbox event, so both replicas' outbox relays run at once too
        await ctx.emit("payment_event", target_id=uuid7(), target_type="payment",
                       metadata={"protocol": "x402", "status": "processed", "amount": payload.n})
        await asyncio.sleep(0.005)  # some work, so requests overlap
        return Done(n=payload.n, replica=name)

    return ServiceRuntime(
        ServiceDefinition(name="probe", version=name, router=router, migrations="tests.probe.migrations"), settings
    )


@pytest.fixture
async def admin(migrated: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    yield conn
    await conn.close()


async def _count(admin: asyncpg.Connection, org: AuthContext) -> int:
    return await admin.fetchval("SELECT count(*) FROM eventlog.events WHERE org_id = $1", org.org_id)


@pytest.mark.usefixtures("services")
async def test_two_service_replicas_share_the_load_once(
    migrated: Settings, bus: BusClient, org: AuthContext, admin: asyncpg.Connection
) -> None:
    handled: Counter = Counter()
    replicas = [_replica(name, handled, migrated) for name in ("a", "b")]
    await asyncio.gather(*(r.start(migrate=False) for r in replicas))
    try:
        replies = await asyncio.gather(*(bus.request(WORK, {"n": n}, org) for n in range(REQUESTS)))
    finally:
        await asyncio.gather(*(r.stop() for r in replicas))  # flushes both outboxes

    assert sorted(r.n for r in replies) == list(range(REQUESTS))
    per_request = Counter(n for (_, n) in handled.elements())
    assert all(per_request[n] == 1 for n in range(REQUESTS)), "a request was handled twice"
    per_replica = Counter(r.replica for r in replies)
    assert per_replica["a"] > 0 and per_replica["b"] > 0, f"one replica did all the work: {per_replica}"
    # Both relays published (SKIP LOCKED claims), the session's event log stored each event once.
    await wait_until(lambda: _eq(_count(admin, org), REQUESTS), timeout=30)
    assert await _count(admin, org) == REQUESTS
    print(f"\nrequests per replica {dict(per_replica)}")


async def _eq(count, expected: int) -> bool:
    return await count == expected


@pytest.fixture
async def scratch_stream(nc: NatsClient) -> AsyncIterator[tuple[str, str]]:
    name = f"DEPLOYTEST_{uuid7().hex[:12].upper()}"
    root = f"deploytest.{name.lower()}"
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{root}.>"], duplicate_window=600))
    yield name, root
    await js.delete_stream(name)


async def test_two_ingest_replicas_share_the_consumer_and_store_each_event_once(
    migrated: Settings, nc: NatsClient, scratch_stream: tuple[str, str], org: AuthContext, admin: asyncpg.Connection
) -> None:
    stream, root = scratch_stream
    settings = EventlogSettings(**migrated.model_dump(), eventlog_batch_size=50)
    connections = [await nats.connect(migrated.nats_url, name=f"ingest-{i}") for i in range(2)]
    replicas = [EventIngest(settings, stream=stream, subject=f"{root}.>", durable="deploy-replicas") for _ in connections]
    for replica, connection in zip(replicas, connections, strict=True):
        await replica.start(connection)
    js = nc.jetstream()
    try:
        for n in range(EVENTS):  # a steady stream, while both replicas fetch
            event = Envelope(type="payment_event", org_id=org.org_id, actor_id=org.actor_id,
                             payload={"metadata": {"protocol": "x402", "status": "processed", "amount": n}})
            await js.publish(f"{root}.native.{org.org_id}.payment_event", event.to_bytes(), stream=stream,
                             headers={"Nats-Msg-Id": str(event.id)})
            if n % 100 == 0:
                await asyncio.sleep(0.01)
        await wait_until(lambda: _eq(_count(admin, org), EVENTS), timeout=30)
    finally:
        for replica in replicas:
            await replica.stop()
        for connection in connections:
            await connection.close()

    assert await _count(admin, org) == EVENTS
    ingested = [r.counters.ingested for r in replicas]
    assert sum(ingested) == EVENTS, f"stored per replica {ingested}"
    assert all(r.counters.duplicates == 0 for r in replicas), "a replica got an event the other had stored"
    assert all(n > 0 for n in ingested), f"one replica did all the work: {ingested}"
    print(f"\nevents per ingest replica {ingested}")
