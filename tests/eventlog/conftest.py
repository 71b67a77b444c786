"""Event log fixtures: a client per org, the owner connection, scratch streams for crash tests."""

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig

from services.eventlog.settings import EventlogSettings
from shared.kernel.envelope import AuthContext
from shared.kernel.ids import uuid7
from shared.kernel.ontology import Role
from shared.kernel.rbac import role_permissions
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.db import app_url, plain_url
from shared.runtime.service import ServiceRuntime
from shared.tools.sdk.events import Events


def owner_of(org_id: UUID, actor_id: UUID | None = None) -> AuthContext:
    """An org owner's auth context made on the test's own bus connection (the bus user is the trust): the event log
    trusts the envelope's auth as every service does, and checks the role in it."""
    return AuthContext(org_id, actor_id or uuid7(), Role.ORG_OWNER, role_permissions(Role.ORG_OWNER))


@pytest.fixture
def org() -> AuthContext:
    """A fresh organization per test, acted on by its owner."""
    return owner_of(uuid7())


@pytest.fixture
def other_org() -> AuthContext:
    return owner_of(uuid7())


@pytest.fixture
def events(bus: BusClient, org: AuthContext) -> Events:
    return Events.over_bus(bus, org)


@pytest.fixture
def other_events(bus: BusClient, other_org: AuthContext) -> Events:
    return Events.over_bus(bus, other_org)


@pytest.fixture(scope="session")
def eventlog_settings(migrated: Settings) -> EventlogSettings:
    """The event log's own settings on the session's servers (its own fields from the environment)."""
    return EventlogSettings.from_common(migrated)


@pytest.fixture
async def admin(migrated: Settings) -> AsyncIterator[asyncpg.Connection]:
    """The owner connection (what migrations and the retention job use)."""
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    yield conn
    await conn.close()


@pytest.fixture
async def app_conn(migrated: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection as the application role."""
    conn = await asyncpg.connect(plain_url(app_url(migrated)))
    yield conn
    await conn.close()


class ScratchStream:
    """A stream of its own, so an ingest under test shares nothing with the running service's consumer."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.root = f"evtest.{name.lower()}"

    def subject(self, protocol: str, org_id: UUID, event_type: str) -> str:
        return f"{self.root}.{protocol}.{org_id}.{event_type}"

    @property
    def filter(self) -> str:
        return f"{self.root}.>"


@pytest.fixture
async def scratch(nc: NatsClient, services: dict[str, ServiceRuntime]) -> AsyncIterator[ScratchStream]:
    stream = ScratchStream(f"EVTEST_{uuid7().hex[:12].upper()}")
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream.name, subjects=[stream.filter], duplicate_window=600))
    yield stream
    await js.delete_stream(stream.name)


async def stored_count(admin: asyncpg.Connection, org_id: UUID) -> int:
    return await admin.fetchval("SELECT count(*) FROM eventlog.events WHERE org_id = $1", org_id)


async def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05) -> None:
    """Poll an async predicate until it holds; fail with a clear message when it never does."""
    deadline = time.monotonic() + timeout
    while True:
        if await predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def wait_for_events(admin: asyncpg.Connection, org_id: UUID, n: int, timeout: float = 15.0) -> None:
    async def enough() -> bool:
        return await stored_count(admin, org_id) >= n

    await wait_until(enough, timeout)

