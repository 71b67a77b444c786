"""`SearchPool` on the real Postgres: a bounded number of connections, handed out in turn, and
nothing half-done ever handed out again."""

import asyncio

import asyncpg
import pytest

from services.knowledge.search_pool import SearchPool
from shared.kernel.settings import Settings
from shared.runtime.db import app_url, plain_url


async def _setup(conn: asyncpg.Connection) -> None:
    await conn.execute("SET application_name = 'search-pool-test'")


@pytest.fixture
async def pool(migrated: Settings) -> SearchPool:
    pool = SearchPool(plain_url(app_url(migrated)), 2, _setup)
    await pool.start()
    yield pool
    await pool.close()


async def _backend(pool: SearchPool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT pg_backend_pid()")


async def _setup_ran(pool: SearchPool) -> bool:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT current_setting('application_name')") == "search-pool-test"


async def test_it_opens_no_more_than_its_size_and_the_waiters_are_served_in_turn(pool: SearchPool) -> None:
    order: list[int] = []

    async def use(n: int) -> int:
        async with pool.acquire() as conn:
            order.append(n)
            return await conn.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)")

    pids = await asyncio.gather(*(use(n) for n in range(6)))
    assert len(set(pids)) == 2
    assert [n for n in order if n >= 2] == [2, 3, 4, 5]  # the four that waited, first come first served
    assert await _backend(pool) in pids  # reused, not reopened
    assert await _setup_ran(pool)


async def test_a_use_that_fails_closes_its_connection_and_the_next_gets_a_fresh_one(pool: SearchPool) -> None:
    before = await _backend(pool)
    with pytest.raises(asyncpg.UndefinedTableError):
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("SELECT * FROM no_such_table")
    assert conn.is_closed()
    assert await _backend(pool) != before


async def test_an_open_transaction_left_behind_is_rolled_back_before_reuse(pool: SearchPool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("BEGIN; SELECT set_config('app.org_id', 'left-behind', true)")
    async with pool.acquire() as again:
        assert again is conn and not again.is_in_transaction()
        assert await again.fetchval("SELECT current_setting('app.org_id', true)") in (None, "")


async def test_a_request_cancelled_mid_query_or_while_waiting_loses_no_connection(pool: SearchPool) -> None:
    async def slow() -> None:
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_sleep(5)")

    busy = [asyncio.create_task(slow()) for _ in range(2)]
    waiting = asyncio.create_task(slow())
    await asyncio.sleep(0.2)
    for task in (*busy, waiting):
        task.cancel()
    await asyncio.gather(*busy, waiting, return_exceptions=True)
    pids = await asyncio.wait_for(asyncio.gather(*(_backend(pool) for _ in range(4))), timeout=5)
    assert len(set(pids)) <= 2


async def test_a_wrong_address_fails_at_start_and_a_closed_pool_refuses(migrated: Settings) -> None:
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await SearchPool("postgresql://nobody@127.0.0.1:1/none", 2, _setup).start()
    pool = SearchPool(plain_url(app_url(migrated)), 1, _setup)
    await pool.start()
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        await _backend(pool)
