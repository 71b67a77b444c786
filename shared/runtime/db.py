"""The database: one async engine per process, connected as the application role.

The handler owns the transaction (`Database.transaction`); services and
repositories only flush. Every transaction that serves an organization sets
`app.org_id` with `set_config(..., true)` — transaction-local, because the pool
does not reset session settings — and Row-Level Security policies read it.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.kernel.settings import Settings
from shared.runtime.tracing import instrument_engine

_SET_TENANT = text("SELECT set_config('app.org_id', :org_id, true)")


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
    async def transaction(self, org_id: UUID | None = None) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        async with self._sessions() as session, session.begin():
            if org_id is not None:
                await session.execute(_SET_TENANT, {"org_id": str(org_id)})
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
