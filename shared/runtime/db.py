"""The database: one async engine per process, connected as the application role.

The handler owns the transaction (`Database.transaction`, a Core connection);
repositories only execute statements in it. Every transaction that serves an organization sets
`app.org_id` with `set_config(..., true)` — transaction-local, because the pool
does not reset session settings — and Row-Level Security policies read it.

A transaction's BEGIN carries its settings (`_Connection`): one round trip, not
three (pre-ping, BEGIN, `set_config`). A pooled connection that comes back still
inside a transaction (a task cancelled while asyncpg was starting or ending one)
is never used: its BEGIN would become a SAVEPOINT in that old transaction, whose
settings and fate are not this transaction's. When Postgres goes away (a backend
killed: the postmaster restarts them all; the server restarted), that BEGIN finds
a dead pooled connection, the pool is replaced (its other connections died too),
and the transaction waits a few seconds for the server to accept connections
again (`CONNECT_RETRY`) instead of failing at once; a transaction that still fails
for want of a connection raises `Unavailable` (retry), never `internal`.
"""

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from pydantic_core import from_json
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shared.kernel.errors import Unavailable
from shared.kernel.settings import Settings
from shared.runtime.sql import Sql
from shared.runtime.tracing import instrument_engine

log = logging.getLogger(__name__)
T = TypeVar("T")
CONNECT_RETRY = (0.1, 0.2, 0.4, 0.8, 1.5)
"""Seconds between tries to get a connection at a transaction's start: ~3 s, a crashed backend's recovery."""
POOL_TIMEOUT = 30.0
"""Seconds a transaction waits for a connection when every one this process may hold is in use."""
_LOST = (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
         asyncpg.CrashShutdownError)


def _broken(error: BaseException) -> bool:
    """A pooled connection whose server went away while it sat idle: asyncpg is still taking in the server's
    farewell (its protocol state is not idle), so the BEGIN that should find it dead is refused instead."""
    cause = error.__cause__ if error.__cause__ is not None else error
    return isinstance(cause, asyncpg.InternalClientError) and "another operation" in str(cause)


class _Stale(Exception):
    """A pooled connection still inside a transaction that is not this one's."""


def connection_lost(error: BaseException) -> bool:
    """Whether `error` (or what it wraps) says the connection is gone or the server is not accepting connections:
    a transient failure, worth a retry, as opposed to a statement that failed."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        found = pending.pop()
        if found is None or id(found) in seen:
            continue
        seen.add(id(found))
        if isinstance(found, DBAPIError) and found.connection_invalidated:
            return True
        if isinstance(found, _LOST):
            return True
        if isinstance(found, asyncpg.InterfaceError) and "connection is closed" in str(found):
            return True
        pending += [found.__cause__, found.__context__, getattr(found, "orig", None)]
    return False


def async_url(url: str) -> str:
    """Accept `postgresql://` URLs and use the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def plain_url(url: str) -> str:
    """The libpq form (`postgresql://`), for asyncpg.connect and psql."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def app_url(settings: Settings) -> str:
    """The application role's URL: explicit, or the admin URL with the user switched."""
    if settings.app_database_url:
        return settings.app_database_url
    if not settings.database_url:
        raise RuntimeError("no database configured: set ONE_DATABASE_URL (or DATABASE_URL)")
    password = settings.db_app_password.get_secret_value() if settings.db_app_password else None
    return make_url(settings.database_url).set(username=settings.db_app_role, password=password).render_as_string(
        hide_password=False
    )


def tenant_org_rls(schema: str, table: str) -> list[str]:
    """DDL that confines a table's rows to the transaction's `app.org_id`.

    FORCE applies the policy to the owner too; `nullif(.., '')` makes an unset
    tenant match nothing instead of erroring or matching everything.
    """
    qualified = f"{schema}.{table}"
    condition = "org_id = nullif(current_setting('app.org_id', true), '')::uuid"
    return [
        f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS org_isolation ON {qualified}",
        f"CREATE POLICY org_isolation ON {qualified} USING ({condition}) WITH CHECK ({condition})",
    ]


class _Connection(asyncpg.Connection):
    """asyncpg's connection, sending a transaction's settings in the round trip of its BEGIN.

    A round trip is most of what a short transaction costs; `BEGIN` then a `set_config` were two.
    asyncpg starts a transaction with a plain `execute("BEGIN ...")` (the simple protocol, which
    takes several statements): `begin_with`, set just before, rides along with that BEGIN only,
    and is emptied when it did (`Database._begin` checks that it was).
    """

    begin_with = ""

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:
        if self.begin_with and not args and query.startswith("BEGIN"):
            query, self.begin_with = f"{query} {self.begin_with}", ""
        return await super().execute(query, *args, timeout=timeout)

    def stale(self) -> bool:
        """Inside a transaction (as asyncpg or the server sees it) before this checkout began one."""
        return self._top_xact is not None or self.is_in_transaction()


def _settings_sql(org_id: UUID | None, timeout_ms: int | None) -> str:
    """The transaction-local settings as SQL sent with BEGIN: the tenant (a UUID: only hex digits and dashes, safe to
    write inline) and the statement timeout (an int)."""
    tenant = f"SELECT set_config('app.org_id', '{UUID(str(org_id))}', true);" if org_id is not None else ""
    timeout = f" SET LOCAL statement_timeout = {int(timeout_ms)};" if timeout_ms is not None else ""
    return tenant + timeout


@contextmanager
def _unavailable_when_lost() -> Iterator[None]:
    """The driver's error that says the database cannot be reached, as `Unavailable` (retry); any other as it is."""
    try:
        yield
    except Exception as error:
        if connection_lost(error):
            raise Unavailable("the database is unreachable right now; retry",
                              {"reason": "database_unreachable"}) from error
        raise


async def _quietly(cleanup: Awaitable[None]) -> None:
    """A rollback, close or invalidation after the work (or the BEGIN) ended; its own failure (the connection is gone) is logged, not raised: it
    would replace the error that ended the work — or its cancellation, which a loop would then take for an outage
    and go on (an outbox relay whose service could not stop while Postgres was down)."""
    try:
        await cleanup
    except Exception as error:
        log.debug("a connection's cleanup failed: %r", error)


def _adapter(connection: AsyncConnection) -> Any:
    """SQLAlchemy's asyncpg adapter under `connection`: it starts and ends the transaction on the driver."""
    return connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]


async def _commit(connection: AsyncConnection) -> None:
    """COMMIT on the driver, leaving SQLAlchemy's own transaction open (the connection is parked inside it)."""
    adapter = _adapter(connection)
    if adapter._transaction is None:  # nothing of it left on the driver (the connection closed under the block)
        await connection.commit()
    else:
        await adapter._commit_and_discard()


class Database:
    """One process's connections to one database, and its units of work (`transaction`).

    A committed connection is parked for the next transaction instead of going back to SQLAlchemy's pool: a
    transaction through SQLAlchemy's checkout, begin, commit and checkin cost ~280 µs of CPU, one on a parked
    connection (BEGIN and COMMIT straight to the driver, SQLAlchemy's own transaction left open meanwhile) ~140 µs.
    So that a transaction waiting for a connection is never starved by parked ones, this class counts what it
    holds (in use or parked, at most the pool's size plus its overflow) and hands a connection being parked to the
    longest waiter; connections beyond the pool's size close when done, as SQLAlchemy's overflow does. Only a
    connection whose commit succeeded is parked: one that failed, was cancelled or rolled back is closed.
    """

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10, service: str = "one") -> None:
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"server_settings": {"application_name": f"one-{service}"}, "connection_class": _Connection},
            # jsonb columns decoded by pydantic_core (the same values as `json.loads`, ~50 ns instead of ~1.2 µs for
            # `{}`: a traversal's or a page's rows each carry one)
            json_deserializer=from_json,
        )
        instrument_engine(self.engine)
        self._pool_size, self._limit = pool_size, pool_size + max_overflow
        self._held = 0  # connections of this Database, in use or parked
        self._parked: list[AsyncConnection] = []
        self._waiters: collections.deque[asyncio.Future[AsyncConnection | None]] = collections.deque()

    @classmethod
    def for_app(cls, settings: Settings, service: str) -> "Database":
        return cls(app_url(settings), pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow, service=service)

    @asynccontextmanager
    async def transaction(
        self, org_id: UUID | None = None, *, statement_timeout_ms: int | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """One unit of work: commits when the block ends, rolls back if it raises; `Unavailable` when the
        database cannot be reached (the block's own code saw the driver's error first). `statement_timeout_ms`
        bounds each of its statements (set with the tenant: no round trip of its own).

        The block gets a Core connection: every repository executes statements (nothing uses the ORM's unit of
        work), and an ORM session around it cost ~300 µs of CPU per transaction for nothing."""
        with _unavailable_when_lost():
            connection = await self._begin(_settings_sql(org_id, statement_timeout_ms))
            try:
                yield connection
                await _commit(connection)
            except BaseException:
                await _quietly(connection.rollback())  # the block's error (or its cancellation) is what goes up
                await self._close(connection)
                raise
            await self._done(connection)

    async def fetch_alone(self, statement: Sql, *args: object, timeout: float | None = None) -> list[asyncpg.Record]:
        """One read on its own: no BEGIN, no COMMIT, the implicit transaction Postgres gives a lone statement, so
        one round trip where a transaction takes three. No tenant is set: the statement must set its own (a function
        of the service's schema that calls `set_config('app.org_id', ...)` before it reads); row-level security shows
        a statement that does not nothing at all. `timeout` (seconds) cancels it on the server when it runs longer
        (`TimeoutError`). A dead pooled connection is retried as a transaction's BEGIN is, the statement sent again:
        so a read only, never a write; `Unavailable` when the database cannot be reached."""
        with _unavailable_when_lost():
            connection, rows = await self._first_round_trip(lambda connection, _: statement.fetch(
                connection, *args, timeout=timeout))
        await self._done(connection)
        return rows

    async def _begin(self, settings_sql: str) -> AsyncConnection:
        """A connection, then BEGIN with the transaction's settings in one round trip."""

        async def begin(connection: AsyncConnection, driver: _Connection) -> None:
            driver.begin_with = settings_sql
            try:
                await _adapter(connection)._start_transaction()  # now, as it would before the first statement
                if driver.begin_with:  # not sent with a BEGIN: this transaction would run without its settings
                    raise RuntimeError("a transaction began without its settings")
            finally:
                driver.begin_with = ""  # never left for a BEGIN that is not this transaction's

        connection, _ = await self._first_round_trip(begin)
        return connection

    async def _first_round_trip(
        self, send: Callable[[AsyncConnection, _Connection], Awaitable[T]]
    ) -> tuple[AsyncConnection, T]:
        """A connection and what `send` got from its first round trip (which also finds a dead pooled connection),
        tried again while the server is restarting (`CONNECT_RETRY`); a stale connection is dropped and another
        taken at once. The connection is closed when `send` fails."""
        delays = iter((*CONNECT_RETRY, None))
        while True:
            connection = None
            try:
                connection = await self._acquire()
                adapter = _adapter(connection)
                driver: _Connection = adapter.driver_connection
                if adapter._started or driver.stale():
                    raise _Stale()
                return connection, await send(connection, driver)
            except _Stale:
                log.warning("a pooled connection came back inside a transaction; replaced")
                await self._close(connection, invalidate=True)  # type: ignore[arg-type]
                continue
            except BaseException as error:
                retry = isinstance(error, Exception) and (connection_lost(error) or _broken(error))
                if connection is not None:
                    if retry:
                        await self._close(connection, invalidate=True)
                        for parked in self._unpark():  # the pool's other connections died with this one
                            await self._close(parked, invalidate=True)
                        await self.engine.dispose(close=False)
                    else:
                        await self._close(connection)
                delay = next(delays) if retry else None
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _acquire(self) -> AsyncConnection:
        """A parked connection, else a new one while fewer than the limit are held, else the next one done (or the
        room a closed one leaves) within `POOL_TIMEOUT`."""
        while True:
            if self._parked:
                return self._parked.pop()
            if self._held < self._limit:
                self._held += 1
                try:
                    return await self._checkout()
                except BaseException:
                    await self._close(None)
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await asyncio.wait_for(asyncio.shield(waiter), POOL_TIMEOUT)
            except BaseException as error:
                if waiter.done() and not waiter.cancelled():  # handed over as this wait ended: pass it on
                    await self._pass_on(waiter.result())
                waiter.cancel()
                if isinstance(error, TimeoutError):
                    raise Unavailable("every database connection of this process is busy; retry",
                                      {"reason": "database_busy"}) from None
                raise
            if handed is not None:
                return handed

    async def _checkout(self) -> AsyncConnection:
        """A connection from the engine's pool, inside SQLAlchemy's transaction (which it keeps while parked: its
        driver adapter sends BEGIN lazily, and `_begin` sends it itself)."""
        connection = await self.engine.connect()
        try:
            await connection.begin()
        except BaseException:
            await _quietly(connection.close())
            raise
        return connection

    def _next_waiter(self) -> asyncio.Future[AsyncConnection | None] | None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    async def _done(self, connection: AsyncConnection) -> None:
        """A committed connection: to the longest waiter, else parked (up to the pool's size), else closed."""
        if (waiter := self._next_waiter()) is not None:
            waiter.set_result(connection)
        elif len(self._parked) < self._pool_size:
            self._parked.append(connection)
        else:
            await self._close(connection)

    async def _pass_on(self, handed: AsyncConnection | None) -> None:
        """What a waiter was handed as it stopped waiting: a connection, or the room to open one (None)."""
        if handed is not None:
            await self._done(handed)
        elif (waiter := self._next_waiter()) is not None:
            waiter.set_result(None)

    async def _close(self, connection: AsyncConnection | None, *, invalidate: bool = False) -> None:
        """Give `connection` back to the engine (`invalidate`: its server side is gone); a waiter may open one."""
        self._held -= 1
        await self._pass_on(None)
        if connection is not None:
            if invalidate:
                await _quietly(connection.invalidate())
            await _quietly(connection.close())

    def _unpark(self) -> list[AsyncConnection]:
        parked, self._parked = self._parked, []
        return parked

    async def dispose(self) -> None:
        for connection in self._unpark():
            await self._close(connection)
        await self.engine.dispose()
