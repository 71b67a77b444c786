"""The faults of the chaos suite, each a kill -9 of one part of a running `one up` stack (tests/deploy/embedded_stack).

Every fault returns what it saw at the moment of the kill (for the table); the stack's supervisor does the
restarting, as `one up` does: nothing here starts anything again.
"""

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

import asyncpg

from shared.runtime.db import plain_url
from tests.deploy.embedded_stack import Stack

CLAIMING = """SELECT (SELECT count(*) FROM graph.outbox WHERE sent_at IS NULL) FROM pg_stat_activity
              WHERE application_name = 'one-graph' AND state = 'idle in transaction'
              AND query LIKE '%FROM graph.outbox WHERE sent_at IS NULL%FOR UPDATE SKIP LOCKED%'"""
"""Rows not marked sent while graph's outbox relay is between its claim and its commit (the claimed batch is being
published to JetStream, or is published and not marked yet); no row when the relay holds no batch."""
MIN_BATCH = 10  # rows pending at the kill; after BATCH_WAIT seconds any batch will do (the load may be light)
BATCH_WAIT = 20.0
APP_BACKENDS = "SELECT pid, application_name FROM pg_stat_activity WHERE usename = 'one_app' ORDER BY backend_start"


async def admin(stack: Stack) -> asyncpg.Connection:
    return await asyncpg.connect(plain_url(stack.settings.database_url))


def kill_child(stack: Stack, name: str) -> dict:
    os.kill(stack.supervisor.children[name].process.pid, signal.SIGKILL)
    return {}


def kill_server(stack: Stack, name: str) -> dict:
    """kill -9 nats-server or the Postgres postmaster; the supervisor restarts it on the same data and port."""
    embedded = stack.servers.nats if name == "nats-server" else stack.servers.postgres
    os.kill(embedded.running_pid(), signal.SIGKILL)
    return {}


async def kill_relay_mid_batch(stack: Stack, burst: Callable[[], Awaitable[None]]) -> dict:
    """A burst of thing creates fills graph's outbox; graph is killed -9 the moment its relay holds a claimed batch
    open (published or being published, not yet marked sent). The restarted relay publishes those rows again with
    the same message ids: JetStream's duplicate window and the event log's unique ids keep one copy of each."""
    conn = await admin(stack)
    bursting = asyncio.create_task(burst())
    try:
        started = time.monotonic()
        while True:
            pending = await conn.fetchval(CLAIMING)
            if pending and (pending >= MIN_BATCH or time.monotonic() - started > BATCH_WAIT):
                break
            assert time.monotonic() - started < 60, "graph's relay was never seen holding a batch"
            if bursting.done():  # the burst is relayed: another one, until a batch is caught in flight
                await bursting
                bursting = asyncio.create_task(burst())
        os.kill(stack.supervisor.children["graph"].process.pid, signal.SIGKILL)
    finally:
        await conn.close()
        await bursting
    return {"pending_at_kill": pending}


async def kill_backend(stack: Stack) -> dict:
    """kill -9 the Postgres backend serving one service connection: the postmaster ends every backend and runs
    crash recovery, so every service's pooled connections break at once."""
    conn = await admin(stack)
    try:
        backends = await conn.fetch(APP_BACKENDS)
    finally:
        await conn.close()
    assert backends, "no service connection to kill"
    victim = next((b for b in backends if b["application_name"] == "one-eventlog"), backends[0])
    os.kill(victim["pid"], signal.SIGKILL)
    return {"backend_of": victim["application_name"]}


async def inject(stack: Stack, fault: str, burst: Callable[[], Awaitable[None]]) -> dict:
    if fault in ("nats-server", "postgres server"):
        return kill_server(stack, "nats-server" if fault == "nats-server" else "postgres")
    if fault == "outbox relay mid-batch":
        return await kill_relay_mid_batch(stack, burst)
    if fault == "postgres backend":
        return await kill_backend(stack)
    return kill_child(stack, fault)


def restarts(stack: Stack, fault: str) -> int:
    """How often the supervisor restarted the killed part so far (0 for a backend: the postmaster restarts those)."""
    server = {"nats-server": "nats-server", "postgres server": "postgres"}.get(fault)
    if server:
        return stack.supervisor.servers[server].restarts
    child = "graph" if fault == "outbox relay mid-batch" else fault
    return stack.supervisor.children[child].restarts if child in stack.supervisor.children else 0
