"""`one backup` / `one restore` round-trip a populated embedded stack: orgs, things, events, vectors and API keys
are all found in the restored one, and the keys still verify (the pepper came along)."""

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from shared.tools.sdk import One
from tests.deploy.embedded_stack import Stack, mode, run_one

pytestmark = pytest.mark.timeout(900)
CONTENT = "Bees cluster together in winter and shiver their flight muscles to keep the hive warm."


def _bus(stack: Stack) -> str:
    """The CLI's login to the stack's NATS, as `one up` hands it to clients."""
    return json.loads((stack.data_dir / "runtime.json").read_text())["nats_url"]


async def _populate(stack: Stack) -> dict:
    async with await One.connect(nats_url=_bus(stack), key=stack.platform_key, name="backup-test") as platform:
        created = await platform.orgs.create("Hive Works", "hive-works",
                                             owner={"email": "keeper@hive.test", "display_name": "Keeper"})
    async with await One.connect(nats_url=_bus(stack), key=created.owner_key, name="backup-test") as owner:
        post = await owner.things.create("blog_post", "Wintering bees", properties={"content": CONTENT})
        job = await owner.knowledge.ingest(post.id)
        finished = await owner.knowledge.wait_for([job.id], timeout=180)
        assert finished[job.id].status == "done", finished
        event = await owner.events.publish("payment_event", metadata={"protocol": "x402", "status": "processed",
                                                                      "amount": 7, "currency": "USD"})
        await _until(lambda: _has_event(owner, event.id), "the event was not ingested")
        second = await owner.keys.create("ci")
    return {"org": created.organization.id, "owner_key": created.owner_key, "second_key": second.key,
            "post": post.id, "event": event.id}


async def _has_event(one: One, event_id) -> bool:
    return any(e.id == event_id for e in (await one.events.query(types=["payment_event"])).events)


async def _until(check, message: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.3)


async def test_backup_and_restore_round_trip_a_populated_stack(tmp_path: Path) -> None:
    original = Stack(tmp_path / "original")
    try:
        await original.start()
        made = await _populate(original)
        refused = run_one(original.data_dir, "backup", str(tmp_path / "refused"))  # a backup is of a stopped stack
        assert refused.returncode == 7 and "in use" in refused.stderr, refused.stdout + refused.stderr
    finally:
        await original.stop()

    backup = tmp_path / "backup"
    done = run_one(original.data_dir, "backup", str(backup))
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    assert {"postgres.dump", "files/tenancy/pepper", "files/credentials.json"} <= set(manifest["files"])
    assert any(name.startswith("jetstream/") for name in manifest["files"])
    assert manifest["schemas"]["graph"] >= 1 and manifest["postgres"].startswith("16")
    assert mode(backup) == 0o700 and mode(backup / "files" / "tenancy" / "pepper") == 0o600

    restored_dir = tmp_path / "restored"
    (restored_dir / "occupied").mkdir(parents=True)
    refused = run_one(restored_dir, "restore", str(backup))  # never over existing data
    assert refused.returncode == 7 and "not empty" in refused.stderr, refused.stdout + refused.stderr
    (restored_dir / "occupied").rmdir()
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    with (damaged / "postgres.dump").open("ab") as dump:
        dump.write(b"\0")
    refused = run_one(restored_dir, "restore", str(damaged))  # checksums are checked before anything is written
    assert refused.returncode == 6 and "altered" in refused.stderr, refused.stdout + refused.stderr
    assert not any(restored_dir.iterdir())

    done = run_one(restored_dir, "restore", str(backup))
    assert done.returncode == 0, done.stdout + done.stderr
    restored = Stack(restored_dir)
    try:
        await restored.start()
        assert restored.platform_key is None  # the platform owner's saved key came back: no new one
        async with await One.connect(nats_url=_bus(restored), key=made["owner_key"], name="backup-test") as owner:
            assert (await owner.whoami()).org_id == made["org"]  # the keys still verify: the pepper came along
            assert (await owner.orgs.get()).id == made["org"]
            assert (await owner.things.get(made["post"])).thing.name == "Wintering bees"
            assert await _has_event(owner, made["event"])
            hits = (await owner.knowledge.search("how do hives survive the cold")).hits
            assert any(str(made["post"]) in hit.model_dump_json() for hit in hits), hits  # the vectors
        async with await One.connect(nats_url=_bus(restored), key=made["second_key"], name="backup-test") as second:
            assert (await second.whoami()).org_id == made["org"]
        assert run_one(restored_dir, "whoami").returncode == 0  # the platform owner's credentials file
    finally:
        await restored.stop()
