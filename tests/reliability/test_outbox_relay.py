"""The outbox relay: at-least-once publishing that downstream sees exactly once."""

import asyncio
import signal
import subprocess
import sys
from uuid import UUID

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from sqlalchemy import text

from shared.kernel import subjects
from shared.kernel.envelope import AuthContext, Envelope
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.db import Database, app_url, plain_url
from shared.runtime.migrate import Migration, migrate_schema
from shared.runtime.outbox import Outbox, OutboxRelay, outbox_ddl

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("services")]


@pytest.fixture
async def schema(migrated: Settings) -> str:
    """A schema of its own with an outbox no running service relays."""
    name = f"outbox_{uuid7().hex[:12]}"
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        await migrate_schema(conn, name, [Migration(1, "init", tuple(outbox_ddl(name)))], migrated)
    finally:
        await conn.close()
    return name


@pytest.fixture
async def db(migrated: Settings):
    database = Database(app_url(migrated), pool_size=2)
    yield database
    await database.dispose()


async def stage_event(db: Database, outbox: Outbox, org: AuthContext) -> Envelope:
    async with db.transaction() as session:
        return await outbox.add_event(
            session, event_type="crash_probe", org_id=org.org_id, actor_id=org.actor_id, payload={"n": 1}
        )


async def stream_messages(nc: NatsClient, stream: str, subject: str) -> list[Msg]:
    """Everything the stream holds on `subject`, in order (read until half a second passes without one)."""
    sub = await nc.jetstream().subscribe(subject, stream=stream, ordered_consumer=True)
    found = []
    try:
        while True:
            try:
                found.append(await sub.next_msg(timeout=0.5))
            except Exception:
                break
    finally:
        await sub.unsubscribe()
    return found


async def messages_on(nc: NatsClient, stream: str, subject: str) -> list[Envelope]:
    return [Envelope.model_validate_json(msg.data) for msg in await stream_messages(nc, stream, subject)]


async def sent_at(db: Database, schema: str, id: UUID):
    async with db.transaction() as session:
        return (await session.execute(text(f"SELECT sent_at FROM {schema}.outbox WHERE id = :id"), {"id": id})).scalar_one()


async def test_relay_killed_between_publish_and_mark_yields_one_message(
    schema: str, db: Database, nc: NatsClient, migrated: Settings, org: AuthContext
) -> None:
    outbox = Outbox(schema)
    event = await stage_event(db, outbox, org)
    subject = subjects.event("native", org.org_id, "crash_probe")

    crashed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.reliability.relay_until_killed", app_url(migrated), migrated.nats_url, schema,
         migrated.events_stream],
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    assert await sent_at(db, schema, event.id) is None  # the mark died with the process
    assert [m.id for m in await messages_on(nc, migrated.events_stream, subject)] == [event.id]

    duplicates = []

    async def record(_: UUID) -> None:
        duplicates.append(_)

    relay = OutboxRelay(outbox, db, nc.jetstream(), stream=migrated.events_stream, after_publish=record)
    assert await relay.relay_once() == 1  # it publishes the row again ...
    assert duplicates == [event.id]
    assert await sent_at(db, schema, event.id) is not None
    assert [m.id for m in await messages_on(nc, migrated.events_stream, subject)] == [event.id]  # ... JetStream drops it
    assert await relay.relay_once() == 0


async def test_two_relays_on_one_outbox_publish_each_row_once(
    schema: str, db: Database, nc: NatsClient, migrated: Settings, org: AuthContext
) -> None:
    outbox = Outbox(schema)
    staged = [await stage_event(db, outbox, org) for _ in range(60)]
    relays = [
        OutboxRelay(outbox, db, nc.jetstream(), stream=migrated.events_stream, batch_size=7) for _ in range(2)
    ]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.relay_once():
            pass

    await asyncio.gather(*(drain(r) for r in relays))
    assert sum(r.published for r in relays) == 60
    assert all(r.published > 0 for r in relays)  # SKIP LOCKED let both work
    received = await messages_on(nc, migrated.events_stream, subjects.event("native", org.org_id, "crash_probe"))
    assert sorted(m.id for m in received) == sorted(e.id for e in staged)
