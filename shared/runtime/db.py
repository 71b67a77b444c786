"""The database: one async engine per process, connected as the application role.

The handler owns the transaction (`Database.transaction`); services and
repositories only flush. Every transaction that serves an organization sets
`app.org_id` with `set_config(..., true)` — transaction-local, because the pool
does not reset session settings — and Row-Level Security policies read it.

When Postgres goes away (a backend killed: the postmaster restarts them all; the
server restarted), pooled connections are found dead at checkout (pre-ping), a
transaction waits a few seconds for the server to accept connections again
(`CONNECT_RETRY`) instead of failing at once, and a transaction that still fails
for want of a connection raises `Unavailable` (retry), never `internal`.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.kernel.errors import Unavailable
from shared.kernel.settings import Settings
from shared.runtime.tracing import instrument_engine

_SET_TENANT = text("SELECT set_config('app.org_id', :org_id, true)")
_SET_TIMEOUT = text("SELECT set_config('statement_timeout', :ms, true)")
_SET_TENANT_AND_TIMEOUT = text("SELECT set_config('app.org_id', :org_id, true), set_config('statement_timeout', :ms, true)")
CONNECT_RETRY = (0.1, 0.2, 0.4, 0.8, 1.5)
"""Seconds between tries to get a connection at a transaction's start: ~3 s, a crashed backend's recovery."""
_LOST = (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
         asyncpg.CrashShutdownError)


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


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10, service: str = "one") -> None:
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            connect_args={"server_settings": {"application_name": f"one-{service}"}},
        )
        instrument_engine(self.engine)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=True)

    @classmethod
    def for_app(cls, settings: Settings, service: str) -> "Database":
        return cls(app_url(settings), pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow, service=service)

    @asynccontextmanager
    async def transaction(
        self, org_id: UUID | None = None, *, statement_timeout_ms: int | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back if it raises; `Unavailable` when the
        database cannot be reached (the block's own code saw the driver's error first). `statement_timeout_ms`
        bounds each of its statements (set in the tenant's statement: no round trip of its own)."""
        try:
            async with self._sessions() as session:
                await self._begin(session)
                try:
                    if org_id is not None and statement_timeout_ms is not None:
                        await session.execute(_SET_TENANT_AND_TIMEOUT,
                                              {"org_id": str(org_id), "ms": str(statement_timeout_ms)})
                    elif org_id is not None:
                        await session.execute(_SET_TENANT, {"org_id": str(org_id)})
                    elif statement_timeout_ms is not None:
                        await session.execute(_SET_TIMEOUT, {"ms": str(statement_timeout_ms)})
                    yield session
                except BaseException:
                    await session.rollback()
                    raise
                await session.commit()
        except Exception as error:
            if connection_lost(error):
                raise Unavailable("the database is unreachable right now; retry",
                                  {"reason": "database_unreachable"}) from error
            raise

    @staticmethod
    async def _begin(session: AsyncSession) -> None:
        """A connection and BEGIN, tried again while the server is restarting (`CONNECT_RETRY`)."""
        for delay in (*CONNECT_RETRY, None):
            try:
                await session.connection()  # autobegin: checkout (pre-ping) and BEGIN
                return
            except Exception as error:
                if delay is None or not connection_lost(error):
                    raise
                await session.rollback()
                await asyncio.sleep(delay)

    async def dispose(self) -> None:
        await self.engine.dispose()
