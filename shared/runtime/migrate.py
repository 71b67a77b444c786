"""Per-service schema migrations, each service with its own version table.

A service's migrations are modules `vNNNN_<name>.py` in its `migrations` package,
each with `STATEMENTS: list[str]`. They run as the owner (admin) role, one
transaction per migration, under an advisory lock so concurrent starters don't
race. Tables are owned by the admin role and granted to the application role by
default privileges, so RLS applies to the app and a migration can still revoke
(e.g. UPDATE/DELETE on an append-only table).
"""

import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import Literal

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.kernel.settings import Settings
from shared.runtime.db import plain_url

_MODULE_NAME = re.compile(r"^v(\d{4})_(\w+)$")
_LOCK_KEY = 0x0_0E_0B_05  # one advisory lock for all schema changes of the platform


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class SchemaState:
    schema: str
    applied: int
    available: int

    @property
    def state(self) -> Literal["current", "behind", "ahead"]:
        if self.applied == self.available:
            return "current"
        return "behind" if self.applied < self.available else "ahead"


def load_migrations(package: str) -> list[Migration]:
    module = importlib.import_module(package)
    migrations = []
    for info in pkgutil.iter_modules(module.__path__):
        match = _MODULE_NAME.match(info.name)
        if not match:
            continue
        loaded = importlib.import_module(f"{package}.{info.name}")
        migrations.append(Migration(int(match.group(1)), match.group(2), tuple(loaded.STATEMENTS)))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"{package}: migration versions must be 1..n without gaps, got {versions}")
    return migrations


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


async def ensure_app_role(conn: asyncpg.Connection, settings: Settings) -> None:
    """The role services connect as: may log in, is no superuser, cannot bypass RLS, owns nothing."""
    role = _ident(settings.db_app_role)
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
    if settings.db_app_password:
        password = settings.db_app_password.get_secret_value().replace("'", "''")
        await conn.execute(f"ALTER ROLE {role} PASSWORD '{password}'")
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')


async def _prepare_schema(conn: asyncpg.Connection, schema: str, role: str) -> None:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    await conn.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
    )
    await conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}")
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute(f"GRANT SELECT ON {schema}.schema_migrations TO {role}")


async def migrate_schema(conn: asyncpg.Connection, schema: str, migrations: list[Migration], settings: Settings) -> list[int]:
    """Apply what is pending; returns the versions applied now."""
    schema, role = _ident(schema), _ident(settings.db_app_role)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await ensure_app_role(conn, settings)
        await _prepare_schema(conn, schema, role)
        applied = {r["version"] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")}
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate_services(settings: Settings, services: dict[str, str]) -> dict[str, list[int]]:
    """Migrate several services ({schema: migrations package}) over one admin connection."""
    if not settings.database_url:
        raise RuntimeError("no database configured: set ONE_DATABASE_URL (or DATABASE_URL)")
    conn = await asyncpg.connect(plain_url(settings.database_url))
    try:
        return {schema: await migrate_schema(conn, schema, load_migrations(pkg), settings) for schema, pkg in services.items()}
    finally:
        await conn.close()


async def schema_version(session: AsyncConnection, schema: str) -> int:
    """What a service sees of its own schema (as the app role); 0 when not migrated."""
    table = f"{_ident(schema)}.schema_migrations"
    if (await session.execute(text("SELECT to_regclass(:t)"), {"t": table})).scalar() is None:
        return 0
    return (await session.execute(text(f"SELECT coalesce(max(version), 0) FROM {table}"))).scalar_one()
