"""The ingest: each event stored once, whatever is duplicated, redelivered or killed on the way."""

import asyncio
import json
import signal
import subprocess
import sys
from uuid import UUID

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient

from services.eventlog.ingest import EventIngest
from services.eventlog.settings import EventlogSettings
from shared.contracts.eventlog import DEAD_LETTER_SUBJECT
from shared.kernel.envelope import AuthContext, Envelope
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.db import app_url
from shared.tools.sdk.events import Events
from tests.eventlog.conftest import ScratchStream, stored_count, wait_for_events, wait_until

pytestmark = pytest.mark.reliability


def payment(org: AuthContext, n: int = 1, **metadata) -> Envelope:
    return Envelope(
        type="payment_event",
        org_id=org.org_id,
        actor_id=org.actor_id,
        payload={"metadata": {"protocol": "x402", "status": "processed", "amount": n, **metadata}},
    )


async def publish(nc: NatsClient, scratch: ScratchStream, envelope: Envelope, *, msg_id: str | None = None) -> None:
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    await nc.jetstream().publish(
        scratch.subject(envelope.protocol.value, envelope.org_id, envelope.type), envelope.to_bytes(),
        stream=scratch.name, headers=headers,
    )


def spawn_ingest(settings: Settings, scratch: ScratchStream, durable: str, mode: str, batch: int = 100) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.eventlog.ingest_until_killed", app_url(settings), settings.nats_url, scratch.name,
         scratch.filter, durable, mode, str(batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


async def test_same_event_published_twice_is_stored_once(
    nc: NatsClient, scratch: ScratchStream, eventlog_settings: EventlogSettings, admin: asyncpg.Connection, org: AuthContext
) -> None:
    event = payment(org)
    await publish(nc, scratch, event)  # no Nats-Msg-Id: JetStream keeps both copies
    await publish(nc, scratch, event)
    info = await nc.jetstream().stream_info(scratch.name)
    assert info.state.messages == 2
    ingest = EventIngest(eventlog_settings, stream=scratch.name, subject=scratch.filter, durable="twice")
    await ingest.start(nc)
    try:
        await wait_until(lambda: _async(ingest.counters.ingested + ingest.counters.duplicates == 2))
    finally:
        await ingest.stop()
    assert await stored_count(admin, org.org_id) == 1
    assert (ingest.counters.ingested, ingest.counters.duplicates) == (1, 1)


async def _async(value: bool) -> bool:
    return value


async def test_event_redelivered_after_crash_before_ack_is_stored_once(
    nc: NatsClient, scratch: ScratchStream, migrated: Settings, admin: asyncpg.Connection, org: AuthContext
) -> None:
    events = [payment(org, n) for n in range(5)]
    for event in events:
        await publish(nc, scratch, event, msg_id=str(event.id))
    crashed = spawn_ingest(migrated, scratch, "crash-after-commit", "after-commit")
    returncode = await asyncio.to_thread(crashed.wait, 60)
    assert returncode == -signal.SIGKILL, crashed.stderr.read().decode()
    assert await stored_count(admin, org.org_id) == 5  # committed, never acked

    settings = EventlogSettings(**migrated.model_dump(), eventlog_ack_wait=2.0)
    restarted = EventIngest(settings, stream=scratch.name, subject=scratch.filter, durable="crash-after-commit")
    await restarted.start(nc)
    try:
        await wait_until(lambda: _async(restarted.counters.duplicates == 5), timeout=40)
    finally:
        await restarted.stop()
    assert restarted.counters.redelivered == 5
    assert await stored_count(admin, org.org_id) == 5
    ids = {r["id"] for r in await admin.fetch("SELECT id FROM eventlog.events WHERE org_id = $1", org.org_id)}
    assert ids == {e.id for e in events}


async def test_consumer_killed_mid_batch_loses_nothing_after_restart(
    nc: NatsClient, scratch: ScratchStream, migrated: Settings, admin: asyncpg.Connection, org: AuthContext
) -> None:
    total = 3000
    events = [payment(org, n) for n in range(total)]
    js = nc.jetstream()
    acks = [
        await js.publish_async(scratch.subject("native", org.org_id, "payment_event"), e.to_bytes(),
                               stream=scratch.name, headers={"Nats-Msg-Id": str(e.id)})
        for e in events
    ]
    await asyncio.gather(*acks)
    victim = spawn_ingest(migrated, scratch, "killed-mid-batch", "run", batch=50)
    try:
        assert (await asyncio.to_thread(victim.stdout.readline)).strip() == b"ready"
        await wait_until(lambda: _between(admin, org.org_id, 1, total - 1), timeout=30, interval=0.005)
    finally:
        victim.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 30)
    at_kill = await stored_count(admin, org.org_id)
    assert 0 < at_kill < total

    settings = EventlogSettings(**migrated.model_dump(), eventlog_ack_wait=2.0)
    restarted = EventIngest(settings, stream=scratch.name, subject=scratch.filter, durable="killed-mid-batch")
    await restarted.start(nc)
    try:
        await wait_for_events(admin, org.org_id, total, timeout=40)
    finally:
        await restarted.stop()
    rows = await admin.fetch("SELECT id FROM eventlog.events WHERE org_id = $1", org.org_id)
    assert len(rows) == total
    assert {r["id"] for r in rows} == {e.id for e in events}


async def _between(admin: asyncpg.Connection, org_id: UUID, low: int, high: int) -> bool:
    return low <= await stored_count(admin, org_id) <= high


async def test_invalid_events_land_in_dead_letter_with_their_reason(
    nc: NatsClient, scratch: ScratchStream, eventlog_settings: EventlogSettings, admin: asyncpg.Connection, org: AuthContext,
    events: Events,
) -> None:
    announced: list[dict] = []

    async def collect(msg) -> None:
        announced.append(json.loads(msg.data))

    sub = await nc.subscribe(DEAD_LETTER_SUBJECT, cb=collect)
    unknown = Envelope(type="journey_step_completed", org_id=org.org_id, actor_id=org.actor_id)
    no_protocol = Envelope(type="payment_processed", org_id=org.org_id, actor_id=org.actor_id,
                           payload={"metadata": {"amount": 5}})
    bad_amount = payment(org, amount="lots")
    valid = payment(org)
    for envelope in (unknown, no_protocol, bad_amount, valid):
        await publish(nc, scratch, envelope)
    misfiled = payment(org)  # filed under another org's subject
    await nc.jetstream().publish(scratch.subject("native", uuid7(), "payment_event"), misfiled.to_bytes(), stream=scratch.name)
    nul = payment(org, note="a\u0000b")  # valid JSON, refused by Postgres jsonb
    await publish(nc, scratch, nul)

    ingest = EventIngest(eventlog_settings, stream=scratch.name, subject=scratch.filter, durable="deadletters")
    await ingest.start(nc)
    try:
        await wait_until(lambda: _async(sum(ingest.counters.dead_lettered.values()) == 5 and ingest.counters.ingested == 1))
    finally:
        await ingest.stop()
    await sub.unsubscribe()

    reasons = {r["event_id"]: r["reason_code"] for r in await admin.fetch(
        "SELECT event_id, reason_code FROM eventlog.dead_letters WHERE org_id = $1", org.org_id)}
    assert reasons == {
        unknown.id: "unknown_type",
        no_protocol.id: "missing_protocol",
        bad_amount.id: "invalid_amount",
        misfiled.id: "subject_mismatch",
        nul.id: "rejected_by_database",
    }
    assert [r["id"] for r in await admin.fetch("SELECT id FROM eventlog.events WHERE org_id = $1", org.org_id)] == [valid.id]
    assert {a["reason_code"] for a in announced if a["org_id"] == str(org.org_id)} == set(reasons.values())
    listed = await events.dead_letters()
    assert {d.reason_code for d in listed.dead_letters} == set(reasons.values())
    assert all(d.reason for d in listed.dead_letters)
    assert ingest.counters.dead_lettered == {code: 1 for code in reasons.values()}


async def test_unreadable_message_is_dead_lettered_not_dropped(
    nc: NatsClient, scratch: ScratchStream, eventlog_settings: EventlogSettings, admin: asyncpg.Connection
) -> None:
    ack = await nc.jetstream().publish(scratch.subject("native", uuid7(), "x"), b"{not json", stream=scratch.name)
    ingest = EventIngest(eventlog_settings, stream=scratch.name, subject=scratch.filter, durable="unreadable")
    await ingest.start(nc)
    try:
        await wait_until(lambda: _async(ingest.counters.dead_lettered.get("malformed_envelope") == 1))
    finally:
        await ingest.stop()
    row = await admin.fetchrow("SELECT * FROM eventlog.dead_letters WHERE dedup_key = $1", f"{scratch.name}:{ack.seq}")
    assert row["reason_code"] == "malformed_envelope" and row["raw"] == "{not json"

