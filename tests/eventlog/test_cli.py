"""`one publish` and `one events ...` as a person types them, and replay to rebuild a read model."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient

from shared.kernel.envelope import AuthContext, Envelope
from shared.kernel.settings import Settings
from shared.runtime.bus import server_has_everything_sent
from shared.runtime.client import BusClient
from shared.tools.sdk.events import Events
from tests.eventlog.conftest import wait_for_events
from tests.tenancy.conftest import Account, create_org  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("services")


def one(settings: Settings, *args: str, stdin: str | None = None, key: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "ONE_NATS_URL": settings.nats_url, "ONE_DATABASE_URL": settings.database_url,
           "ONE_DATA_DIR": str(settings.data_dir), "ONE_API_KEY": key}
    return subprocess.run([sys.executable, "-m", "shared.tools.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60)


async def test_publish_from_flags_and_from_stdin_then_query(
    migrated: Settings, admin: asyncpg.Connection, bus: BusClient, platform: Account, tmp_path: Path,  # noqa: F811
) -> None:
    owner = await create_org(bus, platform)  # the CLI acts only as a verified key
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"amount": 42, "network": "base"}))
    single = await asyncio.to_thread(one, migrated, "publish", "--protocol", "x402", "--type", "payment_event",
                                     "--meta", f"@{meta}", key=owner.key)
    assert single.returncode == 0, single.stderr
    assert json.loads(single.stdout)["type"] == "payment_event"
    lines = "\n".join(json.dumps({"type": "user_login"}) for _ in range(30))
    many = await asyncio.to_thread(one, migrated, "publish", "--stdin", stdin=lines, key=owner.key)
    assert many.returncode == 0, many.stderr
    await wait_for_events(admin, owner.org_id, 31)
    queried = await asyncio.to_thread(one, migrated, "events", "query", "--type", "payment_event", "--json",
                                      key=owner.key)
    assert queried.returncode == 0, queried.stderr
    [event] = [json.loads(line) for line in queried.stdout.splitlines()]
    assert event["metadata"] == {"amount": 42, "network": "base", "protocol": "x402"}


async def test_replay_republishes_a_range_of_positions_in_order(
    events: Events, nc: NatsClient, admin: asyncpg.Connection, org: AuthContext
) -> None:
    await events.publish_many([{"type": "user_login"}] * 10)
    await wait_for_events(admin, org.org_id, 10)
    positions = [e.position for e in (await events.query()).events]
    received: list[tuple[int, Envelope]] = []

    async def rebuild(msg) -> None:
        received.append((int(msg.headers["One-Position"]), Envelope.model_validate_json(msg.data)))

    subject = f"one.rebuild.{org.org_id}"
    sub = await nc.subscribe(subject, cb=rebuild)
    await server_has_everything_sent(nc)
    sent = await events.replay(subject, from_position=positions[2], to_position=positions[7])
    for _ in range(100):
        if len(received) == 6:
            break
        await asyncio.sleep(0.02)
    await sub.unsubscribe()
    assert sent == 6
    assert [p for p, _ in received] == positions[2:8]
    assert all(e.org_id == org.org_id and e.type == "user_login" for _, e in received)
