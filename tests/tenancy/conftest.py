"""Tenancy fixtures (the bootstrapped `platform` is in `tests/conftest.py`): fresh orgs with an owner, members, and an admin view of events."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.tenancy.schemas import MAIL_DROP_SUBJECT
from services.tenancy.service_keys import Credentials
from services.tenancy.state import state_of
from shared.contracts.tenancy import (
    EMAIL_VERIFICATION_REQUEST,
    EMAIL_VERIFY,
    MEMBER_ACCEPT,
    MEMBER_INVITE,
    ORG_CREATE,
    VERIFY_KEY,
)
from shared.kernel.envelope import AuthContext
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.db import Database, app_url, plain_url
from shared.runtime.service import ServiceRuntime


@dataclass
class Account:
    """A member as a test drives it: their key and the auth context it verifies to."""

    key: str
    ctx: AuthContext
    org_id: UUID
    person_id: UUID


async def account(bus: BusClient, key: str) -> Account:
    verified = await bus.request(VERIFY_KEY, {"key": key})
    return Account(key, verified.auth_context(), verified.org_id, verified.actor_id)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid7().hex[-12:]}"


async def create_org(bus: BusClient, platform: Account, **fields: Any) -> Account:
    slug = unique("org")
    body = {"name": slug.title(), "slug": slug, "owner": {"email": f"owner@{slug}.test", "display_name": "Owner"}, **fields}
    created = await bus.request(ORG_CREATE, body, platform.ctx)
    return await account(bus, created.owner_key)


async def add_member(
    bus: BusClient, owner: Account, role: str = "org_user", email: str | None = None,
    mailbox: "Mailbox | None" = None, **fields: Any,
) -> Account:
    """Invite and accept with the token alone: from the reply for a new email, from `mailbox` (where tenancy
    mails it) for an address that already has an account."""
    email = email or f"{unique('m')}@example.test"
    before = mailbox.count_for(email) if mailbox else 0
    issued = await bus.request(MEMBER_INVITE, {"email": email, "role": role, **fields}, owner.ctx)
    if issued.delivery == "email":
        assert mailbox is not None, f"{email} already has an account, so its invitation is mailed: pass the mailbox"
        token = (await mailbox.next_for(email, after=before))["token"]
    else:
        token = issued.token
    joined = await bus.request(MEMBER_ACCEPT, {"token": token, "display_name": "Member"})
    return await account(bus, joined.api_key)


@pytest.fixture
async def owner(bus: BusClient, platform: Account) -> Account:
    """The owner of a fresh org (starter plan, active)."""
    return await create_org(bus, platform)


@pytest.fixture
async def admin(migrated: Settings) -> AsyncIterator[asyncpg.Connection]:
    """The owner role's connection: to look under RLS and to move time (expiries) for a test."""
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    yield conn
    await conn.close()


async def events_of(admin: asyncpg.Connection, org_id: UUID, event_type: str | None = None) -> list[dict[str, Any]]:
    """The events tenancy staged for an org, oldest first (read from its outbox)."""
    rows = await admin.fetch("SELECT envelope FROM tenancy.outbox ORDER BY created_at")
    events = [json.loads(bytes(r["envelope"])) for r in rows]
    return [e for e in events if e["org_id"] == str(org_id) and (event_type is None or e["type"] == event_type)]


@pytest.fixture
def key_cache(services: dict[str, ServiceRuntime]) -> Credentials:
    """The verified-key cache of the session's tenancy."""
    return state_of(services["tenancy"]).keys


@pytest.fixture
def short_key_cache(key_cache: Credentials) -> Iterator[float]:
    """A key cache TTL of 0.3 s for one test, so the TTL bound can be observed without sleeping long."""
    creds = key_cache
    previous, creds.ttl = creds.ttl, 0.3
    yield creds.ttl
    creds.ttl = previous


@pytest.fixture
async def app_db(migrated: Settings) -> AsyncIterator[Database]:
    """The application role's pool, for looking at what RLS lets it see."""
    db = Database(app_url(migrated), pool_size=1)
    yield db
    await db.dispose()


class Mailbox:
    """What tenancy drops on the mail subject (`one.notify.email`), as a mailer adapter would receive it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()

    async def receive(self, msg: Msg) -> None:
        async with self._arrived:
            self.messages.append(json.loads(msg.data))
            self._arrived.notify_all()

    def count_for(self, to: str) -> int:
        return len([m for m in self.messages if m["to"] == to])

    async def next_for(self, to: str, after: int = 0, timeout: float = 5.0) -> dict[str, Any]:
        """The first message to `to` beyond the first `after` of them."""
        def found() -> list[dict[str, Any]]:
            return [m for m in self.messages if m["to"] == to][after:]

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(found), timeout)
            return found()[0]


@pytest.fixture
async def mailbox(nc: NatsClient) -> AsyncIterator[Mailbox]:
    box = Mailbox()
    subscription = await nc.subscribe(MAIL_DROP_SUBJECT, cb=box.receive)
    await nc.flush()
    yield box
    await subscription.unsubscribe()


async def verify_email(bus: BusClient, mailbox: Mailbox, member: Account, email: str) -> str:
    """Ask for a token as `member`, take it from the mail drop, confirm it; returns the token."""
    before = mailbox.count_for(email)
    await bus.request(EMAIL_VERIFICATION_REQUEST, {}, member.ctx)
    token = (await mailbox.next_for(email, after=before))["token"]
    await bus.request(EMAIL_VERIFY, {"token": token})
    return token
