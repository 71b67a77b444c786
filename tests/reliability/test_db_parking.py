"""Connections parked between transactions (shared/runtime/db.py, `Database`): a committed connection serves the
next transaction without going back to SQLAlchemy's pool, yet a transaction waiting for a connection is never
starved by parked ones, a waiter that gives up passes on what it was handed, a failed transaction's connection is
not parked, and a process whose every connection stays busy answers `Unavailable`, not a pool error. A lone read
(`fetch_alone`) runs on a parked connection outside any transaction, sets no tenant, and is cancelled at its
timeout."""

import asyncio
import json

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.graph import repository as graph_repo
from services.graph.rows import NewThing
from shared.kernel.errors import Unavailable
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime import db as db_module
from shared.runtime.db import Database, app_url, plain_url
from shared.runtime.sql import Sql

pytestmark = pytest.mark.reliability


@pytest.fixture
async def db(migrated: Settings):
    database = Database(app_url(migrated), pool_size=2, max_overflow=1, service="db-parking")
    yield database
    await database.dispose()


async def _backend(db: Database, hold: float = 0.0) -> int:
    async with db.transaction() as session:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await asyncio.sleep(hold)
        return pid


async def test_a_committed_connection_serves_the_next_transaction(db: Database) -> None:
    first = await _backend(db)
    assert await _backend(db) == first and db._held == 1


async def test_many_transactions_share_the_limit_without_starving(db: Database) -> None:
    """3 connections at most (2 + 1 overflow), 24 transactions at once: every one ends, none waits for the pool's
    own 30 s timeout (parked connections are handed to waiters), and the overflow one is closed when done."""
    pids = await asyncio.wait_for(asyncio.gather(*(_backend(db, 0.02) for _ in range(24))), 10)
    assert len(set(pids)) <= 3
    assert db._held == 2 and len(db._parked) == 2 and not [w for w in db._waiters if not w.done()]


async def _every_connection_held(db: Database) -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
    """The fixture's 3 connections (2 + 1 overflow) each inside a transaction until the event is set."""
    release = asyncio.Event()

    async def busy() -> None:
        async with db.transaction():
            await release.wait()

    holders = [asyncio.create_task(busy()) for _ in range(3)]
    await asyncio.sleep(0.2)
    return release, holders


async def test_a_waiter_that_gives_up_loses_no_connection(db: Database) -> None:
    release, holders = await _every_connection_held(db)
    waiting = asyncio.create_task(_backend(db))
    await asyncio.sleep(0.05)
    waiting.cancel()
    release.set()
    await asyncio.gather(*holders)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(asyncio.gather(*(_backend(db, 0.01) for _ in range(6))), 10)
    assert db._held == 2


async def test_a_failed_transaction_does_not_park_its_connection(db: Database) -> None:
    first = await _backend(db)
    with pytest.raises(Exception):
        async with db.transaction() as session:
            assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() == first
            await session.execute(text("SELECT 1 / 0"))
    assert db._held == 0 and not db._parked  # back in SQLAlchemy's pool, rolled back
    assert await _backend(db) == first and db._held == 1


async def test_every_connection_busy_too_long_is_unavailable(db: Database, monkeypatch) -> None:
    monkeypatch.setattr(db_module, "POOL_TIMEOUT", 0.3)
    release, holders = await _every_connection_held(db)
    with pytest.raises(Unavailable) as raised:
        await _backend(db)
    assert raised.value.details == {"reason": "database_busy"}
    release.set()
    await asyncio.gather(*holders)
    assert await _backend(db)


# ---- a lone read (`Database.fetch_alone`): one statement, no BEGIN nor COMMIT ---------------------------------------

_PID = Sql("SELECT pg_backend_pid() AS pid")


async def test_a_lone_read_runs_alone_on_a_parked_connection(db: Database) -> None:
    """On the connection the last transaction parked, which is parked again, outside any transaction, for the next."""
    first = await _backend(db)
    [row] = await db.fetch_alone(_PID)
    assert row["pid"] == first
    assert db._held == 1 and len(db._parked) == 1
    assert not db_module._adapter(db._parked[0]).driver_connection.is_in_transaction()
    assert await _backend(db) == first


async def test_a_lone_read_that_sets_no_tenant_sees_nothing(db: Database) -> None:
    """No tenant is set for it: Row-Level Security shows a statement that does not set its own no row at all."""
    org = uuid7()
    thing = NewThing(uuid7(), org, "lesson", "mine", {}, "draft", 1, None, None)
    async with db.transaction(org) as session:
        await graph_repo.insert_things(session, [thing])
    count = Sql("SELECT count(*) FROM graph.things WHERE org_id = $1")
    assert (await db.fetch_alone(count, org))[0][0] == 0
    async with db.transaction(org) as session:
        assert (await count.fetch(session, org))[0][0] == 1


async def test_a_failed_lone_read_does_not_park_its_connection(db: Database) -> None:
    await _backend(db)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await db.fetch_alone(Sql("SELECT 1 / 0"))
    assert db._held == 0 and not db._parked
    assert await db.fetch_alone(_PID) and db._held == 1  # the next one is answered


async def test_a_lone_read_past_its_timeout_is_cancelled(db: Database, migrated: Settings) -> None:
    """`TimeoutError` at the timeout, the statement cancelled on the server, the connection not parked."""
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await db.fetch_alone(Sql("SELECT pg_sleep(30)"), timeout=0.2)
    assert asyncio.get_running_loop().time() - started < 5
    assert db._held == 0 and not db._parked
    admin = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        for _ in range(50):
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
                                        " AND state = 'active'"):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the timed-out statement still runs on the server")
    finally:
        await admin.close()


async def test_a_lone_read_without_a_server_is_unavailable(migrated: Settings, unused_tcp_port: int) -> None:
    url = make_url(app_url(migrated)).set(host="127.0.0.1", port=unused_tcp_port)
    nowhere = Database(url.render_as_string(hide_password=False), pool_size=1, service="db-parking")
    try:
        with pytest.raises(Unavailable) as raised:
            await nowhere.fetch_alone(_PID)
        assert raised.value.details == {"reason": "database_unreachable"}
    finally:
        await nowhere.dispose()


@pytest.mark.parametrize("document", [
    '{}', '{"big": 123456789012345678901234567890, "f": 0.1, "g": 1e308, "h": -0.0, "k": 1.0, "tiny": 5e-324}',
    '{"u": "\\u00e9\\u2713 \\ud83d\\ude00", "e": "", "n": null, "t": true, "l": [1, [2, [3]]], "o": {"a": {"b": []}}}',
    '[1, "two", null]', '"text"', '3',
])
async def test_jsonb_reads_back_as_json_loads_reads_it(db: Database, document: str) -> None:
    """The engine decodes jsonb with pydantic_core: the values and types `json.loads` gives for the text Postgres
    keeps (jsonb normalizes numbers: 1e308 comes back as its digits), through a lone read and SQLAlchemy alike."""
    [row] = await db.fetch_alone(Sql("SELECT CAST($1 AS jsonb) AS v, CAST(CAST($1 AS jsonb) AS text) AS kept"), document)
    expected = json.loads(row["kept"])
    assert json.dumps(row["v"]) == json.dumps(expected)  # equal values of equal types (1.0 is not 1), at any depth
    async with db.transaction() as session:
        through_core = (await session.execute(text("SELECT CAST(:d AS jsonb)"), {"d": document})).scalar_one()
    assert json.dumps(through_core) == json.dumps(expected)
