"""The database layer when Postgres goes away under it (shared/runtime/db.py): a pooled connection whose backend
died is replaced at the next checkout, a transaction that loses its connection ends in `Unavailable` (a typed,
retryable answer, never `internal`) after the code inside saw the driver's error, a server that does not answer at
all is `Unavailable` after the short connect retry, and a statement that fails is still its own error."""

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.kernel.errors import Unavailable
from shared.kernel.settings import Settings
from shared.runtime.db import Database, app_url, connection_lost, plain_url
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
    assert await _backend(db) not in (first, None)  # no error: pre-ping found it dead and connected again


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
