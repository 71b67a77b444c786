"""eventlog.*: events published to JetStream -> committed in Postgres by the ingest.

- `eventlog.ingest.rate`: events/s from the first publish until the last one is
  committed, with the ingest in its own process (as in production); baseline: the
  same publisher into a stream nobody consumes (raw JetStream batched publish).
- `eventlog.ingest.p99`: publish-to-queryable latency at half that rate (a
  poller looks for new rows every 5 ms, so the figure includes up to 5 ms of
  polling); baseline: the 250 ms target.
- `eventlog.insert.raw`: the ingest's multi-row insert straight through asyncpg
  (1000 rows per transaction, same table and indexes), for reference.

`python -m tests.bench.bench_eventlog ingest <nats> <app_db> <stream> <filter> <durable>`
runs the ingest process.
"""

import asyncio
import subprocess
import sys
import time

import asyncpg
import nats
from nats.js.api import StreamConfig

from services.eventlog import repository
from services.eventlog.checks import check_incoming
from shared.kernel.envelope import Envelope
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.db import plain_url
from tests.bench.harness import Figure, percentile

PREFIX = "eventlog"
N_RATE = 50_000
LATENCY_SECONDS = 6.0
WINDOW = 2_000  # publishes awaiting their JetStream ack
TARGET_P99_MS = 250.0


def _event(org, actor, n: int) -> Envelope:
    return Envelope(
        type="payment_event",
        org_id=org,
        actor_id=actor,
        payload={
            "target_id": str(uuid7()),
            "target_type": "payment",
            "metadata": {"protocol": "x402", "status": "processed", "amount": n % 1000, "currency": "USD",
                         "network": "base", "txHash": f"0x{n:064x}"},
        },
    )


async def _stream(js, root: str) -> str:
    name = f"BENCH_{uuid7().hex[:10].upper()}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{root}.>"]))
    return name


async def _publish_all(js, stream: str, messages: list[tuple[str, bytes, str]]) -> None:
    """Batched publish: up to WINDOW in flight, each with its Nats-Msg-Id, all acked at the end."""
    pending = []
    for subject, body, msg_id in messages:
        pending.append(await js.publish_async(subject, body, stream=stream, headers={"Nats-Msg-Id": msg_id}))
        if len(pending) >= WINDOW:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


def _messages(root: str, n: int) -> tuple:
    org, actor = uuid7(), uuid7()
    built = []
    for i in range(n):
        e = _event(org, actor, i)
        built.append((f"{root}.native.{org}.payment_event", e.to_bytes(), str(e.id)))
    return org, built


def _spawn_ingest(nats_url: str, app_db: str, stream: str, root: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_eventlog", "ingest", nats_url, app_db, stream, f"{root}.>", "bench"],
        stdout=subprocess.PIPE, text=True,
    )


async def _count(admin: asyncpg.Connection, org) -> int:
    return await admin.fetchval("SELECT count(*) FROM eventlog.events WHERE org_id = $1", org)


async def _raw_publish_rate(js) -> float:
    root = f"benchraw{uuid7().hex[:8]}"
    stream = await _stream(js, root)
    _, messages = _messages(root, N_RATE)
    start = time.perf_counter()
    await _publish_all(js, stream, messages)
    rate = N_RATE / (time.perf_counter() - start)
    await js.delete_stream(stream)
    return rate


async def _end_to_end(js, admin, nats_url: str, app_db: str) -> tuple[float, float]:
    root = f"benche2e{uuid7().hex[:8]}"
    stream = await _stream(js, root)
    ingest = _spawn_ingest(nats_url, app_db, stream, root)
    try:
        assert (await asyncio.to_thread(ingest.stdout.readline)).strip() == "ready"
        org, messages = _messages(root, N_RATE)
        start = time.perf_counter()
        await _publish_all(js, stream, messages)
        while await _count(admin, org) < N_RATE:
            await asyncio.sleep(0.01)
        rate = N_RATE / (time.perf_counter() - start)
        p99 = await _latency(js, admin, stream, root, rate / 2)
    finally:
        ingest.terminate()
        ingest.wait()
        await js.delete_stream(stream)
    return rate, p99


async def _latency(js, admin, stream: str, root: str, rate: float) -> float:
    """Publish at `rate` for LATENCY_SECONDS; each event's latency is when a poll first sees it minus its occurred_at."""
    org, actor = uuid7(), uuid7()
    subject = f"{root}.native.{org}.payment_event"
    sent: dict = {}
    seen: dict = {}
    done = asyncio.Event()

    async def poll() -> None:
        after = 0
        while not done.is_set() or len(seen) < len(sent):
            rows = await admin.fetch(
                "SELECT position, id FROM eventlog.events WHERE org_id = $1 AND position > $2 ORDER BY position", org, after
            )
            now = time.perf_counter()
            for row in rows:
                seen.setdefault(row["id"], now)
                after = row["position"]
            await asyncio.sleep(0.005)

    poller = asyncio.create_task(poll())
    tick, n = 0.01, 0
    start = time.perf_counter()
    while time.perf_counter() - start < LATENCY_SECONDS:
        due = int((time.perf_counter() - start) * rate)
        while n < due:
            e = _event(org, actor, n)
            sent[e.id] = time.perf_counter()
            await js.publish_async(subject, e.to_bytes(), stream=stream, headers={"Nats-Msg-Id": str(e.id)})
            n += 1
        await asyncio.sleep(tick)
    done.set()
    await asyncio.wait_for(poller, 60)
    return percentile([(seen[i] - t) * 1000 for i, t in sent.items()], 0.99)


async def _raw_insert_rate(app_db: str) -> float:
    org, actor = uuid7(), uuid7()
    events = [check_incoming(_event(org, actor, i).to_bytes(), f"x.native.{org}.payment_event", None, i)
              for i in range(20_000)]
    conn = await asyncpg.connect(app_db)
    try:
        start = time.perf_counter()
        for k in range(0, len(events), 1000):
            async with conn.transaction():
                await repository.lock_positions(conn)
                await repository.insert_events(conn, org, events[k : k + 1000])
        return len(events) / (time.perf_counter() - start)
    finally:
        await conn.close()


async def run(nats_url: str, db_url: str) -> list[Figure]:
    from shared.runtime.db import app_url

    settings = Settings(database_url=db_url, nats_url=nats_url)
    app_db = plain_url(app_url(settings))
    nc = await nats.connect(nats_url)
    admin = await asyncpg.connect(plain_url(db_url))
    try:
        js = nc.jetstream()
        raw_publish = await _raw_publish_rate(js)
        rate, p99 = await _end_to_end(js, admin, nats_url, app_db)
        raw_insert = await _raw_insert_rate(app_db)
    finally:
        await admin.close()
        await nc.close()
    return [
        Figure("eventlog.ingest.rate", rate, "events/s", raw_publish, "published→committed; target ≥10,000/s"),
        Figure("eventlog.ingest.p99", p99, "ms", TARGET_P99_MS, f"publish→queryable at {rate / 2:,.0f}/s; baseline = target"),
        Figure("eventlog.insert.raw", raw_insert, "rows/s", rate, "asyncpg 1000-row inserts; baseline = ingest rate"),
    ]


async def _ingest_main(nats_url: str, app_db: str, stream: str, subject: str, durable: str) -> None:
    from services.eventlog.ingest import EventIngest
    from services.eventlog.settings import EventlogSettings

    nc = await nats.connect(nats_url)
    ingest = EventIngest(EventlogSettings(nats_url=nats_url, app_database_url=app_db), stream=stream, subject=subject,
                         durable=durable)
    await ingest.start(nc)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__" and sys.argv[1:2] == ["ingest"]:
    asyncio.run(_ingest_main(*sys.argv[2:7]))
