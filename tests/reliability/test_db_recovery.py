"""The database layer when Postgres goes away under it (shared/runtime/db.py): a pooled connection whose backend
died is replaced at the next checkout, a transaction that loses its connection ends in `Unavailable` (a typed,
retryable answer, never `internal`) after the code inside saw the driver's error, a server that does not answer at
all is `Unavailable` after the short connect retry, and a statement that fails is still its own error."""

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.kernel.errors import Unavailable
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.db import Database, app_url, connection_lost, plain_url
from shared.runtime.sql import Sql
from shared.tools.embedded import free_port

pytestmark = pytest.mark.reliability


@pytest.fixture
async def db(migrated: Settings):
    database = Database(app_url(migrated), pool_size=1, max_overflow=0, service="db-recovery")
    yield database
    await database.dispose()


async def _backend(db: Database) -> int:
    async with db.transaction() as session:
        return (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def _terminate(migrated: Settings, pid: int) -> None:
    admin = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_pooled_connection_whose_backend_died_is_replaced_at_checkout(db: Database, migrated: Settings) -> None:
    first = await _backend(db)
    await _terminate(migrated, first)
    assert await _backend(db) not in (first, None)  # no error: the BEGIN found it dead and connected again


async def test_a_connection_that_comes_back_inside_a_transaction_is_never_reused(
    db: Database, migrated: Settings
) -> None:
    """A task cancelled while asyncpg began a transaction leaves the pooled connection inside it (asyncpg's and the
    server's), under the tenant of the org it served. Used again, the next BEGIN would be a SAVEPOINT in that old
    transaction: its tenant sent with a BEGIN that never went out (RLS refuses the write, or lets it in as the
    other org's), its commit only a RELEASE (the write lost when the connection goes)."""
    mine, theirs = uuid7(), uuid7()
    async with db.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).dbapi_connection.driver_connection
        await driver.transaction().start()  # behind SQLAlchemy's back, as a cancelled start leaves it
        await driver.execute(f"SELECT set_config('app.org_id', '{theirs}', true)")
        stale_pid = driver.get_server_pid()
    note = uuid7()
    async with db.transaction(mine) as session:
        await session.execute(text("INSERT INTO probe.notes (id, org_id, body) VALUES (:id, :org, 'kept')"),
                              {"id": note, "org": mine})
        assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() != stale_pid
    admin = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        assert await admin.fetchval("SELECT org_id FROM probe.notes WHERE id = $1", note) == mine  # committed
    finally:
        await admin.close()


async def test_a_transaction_that_loses_its_connection_is_unavailable(db: Database, migrated: Settings) -> None:
    seen_inside: list[BaseException] = []
    with pytest.raises(Unavailable) as raised:
        async with db.transaction() as session:
            await _terminate(migrated, (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            try:
                await session.execute(text("SELECT 1"))
            except DBAPIError as error:
                seen_inside.append(error)
                raise
    assert raised.value.code == "unavailable" and raised.value.details == {"reason": "database_unreachable"}
    assert len(seen_inside) == 1 and connection_lost(seen_inside[0])  # the block saw the driver's own error
    assert await _backend(db)  # and the next transaction works


async def test_a_block_cancelled_on_a_dead_connection_ends_cancelled(db: Database, migrated: Settings) -> None:
    """The rollback's own error (the connection is gone) must not replace the cancellation: an outbox relay read it
    as `Unavailable`, went on polling, and its service could not stop while Postgres was down."""
    inside = asyncio.Event()

    async def work() -> None:
        async with db.transaction() as session:
            await _terminate(migrated, (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _backend(db)  # and the next transaction works


async def test_no_server_at_all_is_unavailable_after_the_connect_retry() -> None:
    database = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/none", pool_size=1, service="db-recovery")
    try:
        with pytest.raises(Unavailable) as raised:
            async with database.transaction() as session:
                await session.execute(text("SELECT 1"))
        assert connection_lost(raised.value.__cause__)
    finally:
        await database.dispose()


async def test_a_failing_statement_is_not_mistaken_for_a_lost_connection(db: Database) -> None:
    with pytest.raises(DBAPIError) as raised:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1 / 0"))
    assert not isinstance(raised.value, Unavailable) and not connection_lost(raised.value)
    assert await _backend(db)


async def test_a_lone_read_on_a_connection_whose_backend_died_is_answered(db: Database, migrated: Settings) -> None:
    """`fetch_alone` finds a dead parked connection as a BEGIN does: replaced, and the read answered (a read is
    safe to send again)."""
    first = await _backend(db)
    await _terminate(migrated, first)
    [row] = await db.fetch_alone(Sql("SELECT pg_backend_pid() AS pid"))
    assert row["pid"] not in (first, None)
