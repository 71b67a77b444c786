"""Connections parked between transactions (shared/runtime/db.py, `Database`): a committed connection serves the
next transaction without going back to SQLAlchemy's pool, yet a transaction waiting for a connection is never
starved by parked ones, a waiter that gives up passes on what it was handed, a failed transaction's connection is
not parked, and a process whose every connection stays busy answers `Unavailable`, not a pool error."""

import asyncio

import pytest
from sqlalchemy import text

from shared.kernel.errors import Unavailable
from shared.kernel.settings import Settings
from shared.runtime import db as db_module
from shared.runtime.db import Database, app_url

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
