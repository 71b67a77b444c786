"""graph.*: creating things and a 2-hop neighbour query through the bus vs raw asyncpg, same run.

As in `bench_tenancy`, the services (graph and tenancy: the create path asks tenancy for the
graph's `things` quota lease, once per org and lease window, not per create) run in their own
process and the client in this one.
The baselines do the same SQL work by hand on an asyncpg pool as the application role, with the
tenant set per transaction (so RLS costs both sides alike): one INSERT per thing, a batch INSERT
from arrays, and a two-join neighbour query. The neighbour graph (100k things, 300k random
connections) is loaded with COPY, and the creates' events are relayed, before queries are timed.
`neighbors2.bare` times the same walk through a bare nats-py responder (in the services' process, on one asyncpg
connection, calling the graph's `graph.neighbors`): what any service on the bus pays at least, beside the same
baseline, so the gap between ours and bare is our stack's own.
`python -m tests.bench.bench_graph <nats> <db>` is the services' side.
"""

import asyncio
import gc
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from tests.bench.harness import Figure, latencies, percentile, throughput
from tests.bench.rr_processes import IN_FLIGHT, settings_for, tracing

if TYPE_CHECKING:
    from shared.kernel.envelope import AuthContext
    from shared.runtime.client import BusClient

PREFIX = "graph"
N_CREATE = 3000
BATCH = 500
N_BATCHES = 20
N_THINGS = 100_000
N_CONNECTIONS = 300_000
N_QUERIES = 1000
SAMPLE_RATIO = 0.1

_INSERT_ONE = (
    "INSERT INTO graph.things (id, org_id, type, name, properties, status) VALUES ($1, $2, 'lesson', $3, '{}', 'draft')"
)
_INSERT_MANY = (
    "INSERT INTO graph.things (id, org_id, type, name, properties, status)"
    " SELECT i, $2, 'lesson', n, '{}', 'draft' FROM unnest($1::uuid[], $3::text[]) AS t(i, n)"
)
_BARE_NEIGHBORS = "SELECT * FROM graph.neighbors($1, $2, 2, 1000, 'out', NULL, NULL)"
BARE_SUBJECT = "bench.graph.bare.neighbors"
_TWO_HOPS = """
    SELECT DISTINCT t.* FROM graph.connections c1
    JOIN graph.connections c2 ON c2.org_id = $1 AND c2.from_id = c1.to_id
    JOIN graph.things t ON t.org_id = $1 AND t.id IN (c1.to_id, c2.to_id) AND t.deleted_at IS NULL
    WHERE c1.org_id = $1 AND c1.from_id = $2 AND t.id <> $2
"""


async def _outbox_drained(pool: asyncpg.Pool) -> None:
    """Let the relay publish the creates' events first, so it does not compete with the queries."""
    while await pool.fetchval("SELECT count(*) FROM graph.outbox WHERE sent_at IS NULL"):
        await asyncio.sleep(0.2)


async def _tenant(conn: asyncpg.Connection, org_id: UUID) -> None:
    await conn.execute("SELECT set_config('app.org_id', $1, true)", str(org_id))


async def _load_graph(admin: asyncpg.Connection, org_id: UUID) -> list[UUID]:
    from shared.kernel.ids import uuid7

    ids = [uuid7() for _ in range(N_THINGS)]
    now = datetime.now(UTC)
    await admin.copy_records_to_table(
        "things", schema_name="graph", columns=["id", "org_id", "type", "name", "properties", "status", "created_at", "updated_at"],
        records=[(i, org_id, "elizaos_plugin", f"plugin {n}", "{}", "active", now, now) for n, i in enumerate(ids)],
    )
    rng = random.Random(7)
    edges = []
    for n in range(N_CONNECTIONS):
        a, b = ids[n % N_THINGS], ids[rng.randrange(N_THINGS)]
        if a != b:
            edges.append((uuid7(), org_id, a, b, "plugin_depends_on", "{}", now, now, now))
    await admin.copy_records_to_table(
        "connections", schema_name="graph",
        columns=["id", "org_id", "from_id", "to_id", "type", "metadata", "valid_from", "created_at", "updated_at"],
        records=edges,
    )
    await admin.execute("ANALYZE graph.things; ANALYZE graph.connections")
    return ids


async def serve(nats_url: str, db_url: str) -> None:
    """The services' side: tenancy and graph, a platform, two orgs (one with the loaded graph)."""
    from services.graph.app import definition
    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.db import plain_url
    from tests.bench.services import start_with_tenancy

    platform = await start_with_tenancy("graph", definition, nats_url, db_url, SAMPLE_RATIO)
    keys = [await platform.new_org_key() for _ in range(2)]
    graph_org = (await platform.bus.request(VERIFY_KEY, {"key": keys[1]})).org_id
    admin = await asyncpg.connect(plain_url(db_url))
    try:
        ids = await _load_graph(admin, graph_org)
    finally:
        await admin.close()
    rng = random.Random(11)
    starts = [str(rng.choice(ids)) for _ in range(N_QUERIES + 100)]
    del ids  # the loader's 100k ids are the bench's, not the service's: no GC pass of the service walks them
    gc.collect()
    bare = await _bare_neighbors(nats_url, db_url)
    print("ready", keys[0], keys[1], ",".join(starts), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await bare.close()


async def _bare_neighbors(nats_url: str, db_url: str) -> "nats.aio.client.Client":
    """The floor of any neighbour query on the bus: a bare nats-py responder (no envelope, no auth, no tracing, no
    pool) calling the graph's own `graph.neighbors` on one asyncpg connection, its rows as the same JSON."""
    import nats
    from pydantic_core import from_json, to_json

    from shared.runtime.db import app_url, plain_url
    from tests.bench.rr_processes import settings_for

    connection = await asyncpg.connect(plain_url(app_url(settings_for(nats_url, db_url, 0.0))))
    nc = await nats.connect(nats_url)

    async def respond(msg: "nats.aio.msg.Msg") -> None:
        asked = from_json(msg.data)
        rows = await connection.fetch(_BARE_NEIGHBORS, UUID(asked["org"]), UUID(asked["start"]))
        await nc.publish(msg.reply, to_json({"neighbors": [{"thing": {
            "id": r["id"], "type": r["type"], "name": r["name"], "properties": json.loads(r["properties"]),
            "status": r["status"], "version": r["version"], "created_at": r["created_at"], "updated_at": r["updated_at"],
            "deleted_at": r["deleted_at"]}, "depth": r["reached_depth"]} for r in rows[1:]]}))

    await nc.subscribe(BARE_SUBJECT, cb=respond)
    await nc.flush()
    return nc


def _spawn(nats_url: str, db_url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.bench_graph", nats_url, db_url], stdout=subprocess.PIPE, text=True)


async def run(nats_url: str, db_url: str) -> list[Figure]:
    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.client import BusClient
    from shared.runtime.db import app_url, plain_url

    settings = settings_for(nats_url, db_url, SAMPLE_RATIO)
    server = _spawn(nats_url, db_url)
    try:
        word, create_key, graph_key, start_ids = (await asyncio.to_thread(server.stdout.readline)).split()
        assert word == "ready"
        starts = [UUID(s) for s in start_ids.split(",")]
        tracing("bench-client", settings)
        bus = await BusClient.connect(settings)
        pool = await asyncpg.create_pool(plain_url(app_url(settings)), min_size=8, max_size=IN_FLIGHT)
        try:
            ctx = (await bus.request(VERIFY_KEY, {"key": create_key})).auth_context()
            graph_ctx = (await bus.request(VERIFY_KEY, {"key": graph_key})).auth_context()
            return await _measure(bus, pool, ctx, graph_ctx, starts)
        finally:
            await pool.close()
            await bus.close()
    finally:
        server.terminate()
        server.wait()


async def _measure(
    bus: "BusClient", pool: asyncpg.Pool, ctx: "AuthContext", graph_ctx: "AuthContext", starts: list[UUID]
) -> list[Figure]:
    """Each of ours beside its raw asyncpg equivalent, back to back."""
    from pydantic_core import to_json

    from shared.contracts.graph import (
        NEIGHBORS,
        THING_CREATE,
        THING_CREATE_BATCH,
        NeighborQuery,
        Neighbors,
        ThingCreate,
        ThingCreateBatch,
    )
    from shared.kernel.ids import uuid7

    org_id = ctx.org_id
    one = ThingCreate(type="lesson", name="bench lesson")
    ours_create = await throughput(lambda: bus.request(THING_CREATE, one, ctx), N_CREATE, IN_FLIGHT)

    async def raw_create() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await _tenant(conn, org_id)
            await conn.execute(_INSERT_ONE, uuid7(), org_id, "bench lesson")

    raw_create_rate = await throughput(raw_create, N_CREATE, IN_FLIGHT)

    batch = ThingCreateBatch(things=[one] * BATCH)
    start = time.perf_counter()
    await throughput(lambda: bus.request(THING_CREATE_BATCH, batch, ctx, timeout=60), N_BATCHES, 4)
    ours_batch = N_BATCHES * BATCH / (time.perf_counter() - start)

    async def raw_batch() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await _tenant(conn, org_id)
            await conn.execute(_INSERT_MANY, [uuid7() for _ in range(BATCH)], org_id, ["bench lesson"] * BATCH)

    start = time.perf_counter()
    await throughput(raw_batch, N_BATCHES, 4)
    raw_batch_rate = N_BATCHES * BATCH / (time.perf_counter() - start)

    await _outbox_drained(pool)
    ours_starts, raw_starts, bare_starts = iter(starts), iter(starts), iter(starts)

    async def ours_neighbors() -> object:
        return await bus.request(NEIGHBORS, NeighborQuery(thing_id=next(ours_starts), depth=2), graph_ctx)

    async def raw_neighbors() -> object:
        async with pool.acquire() as conn, conn.transaction():
            await _tenant(conn, graph_ctx.org_id)
            return await conn.fetch(_TWO_HOPS, graph_ctx.org_id, next(raw_starts))

    async def bare_neighbors() -> object:
        body = to_json({"org": graph_ctx.org_id, "start": next(bare_starts)})
        return Neighbors.model_validate_json((await bus.nc.request(BARE_SUBJECT, body, timeout=10)).data)

    ours_p99 = percentile(await latencies(ours_neighbors, N_QUERIES, warmup=100), 0.99)
    raw_p99 = percentile(await latencies(raw_neighbors, N_QUERIES, warmup=100), 0.99)
    bare_p99 = percentile(await latencies(bare_neighbors, N_QUERIES, warmup=100), 0.99)
    return [
        Figure(f"{PREFIX}.create.rate", ours_create, "things/s", raw_create_rate,
               f"one per request incl. quota lease, {IN_FLIGHT} in flight; baseline one INSERT per transaction"),
        Figure(f"{PREFIX}.create_batch.rate", ours_batch, "things/s", raw_batch_rate,
               f"{BATCH} per request, 4 in flight; baseline INSERT ... unnest"),
        Figure(f"{PREFIX}.neighbors2.p99", ours_p99, "µs", raw_p99,
               f"2 hops, {N_THINGS // 1000}k things / {N_CONNECTIONS // 1000}k connections; baseline two-join SQL"),
        Figure(f"{PREFIX}.neighbors2.bare.p99", bare_p99, "µs", raw_p99,
               "the same query through a bare nats-py responder on one asyncpg connection: the floor of any "
               "service on the bus, beside the same baseline"),
    ]


if __name__ == "__main__":
    asyncio.run(serve(*sys.argv[1:]))
