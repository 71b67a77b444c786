"""The fault suite on a real `one up`-style stack (secure, supervised): under a steady load of event publishes and
thing creates, kill -9 in turn the event-log service, the graph service, tenancy and nats-server (restarted on the
same store), and measure for each: writes acked, acked writes lost (must be 0), duplicates stored (must be 0),
seconds until every acked write is queryable and every service healthy again, with no human in between.

Marked `chaos` (minutes, not seconds): `make chaos` runs it and writes the table to .bench/chaos.json. The
restart of a killed child by `one up` runs in `make test` too (tests/deploy/test_secure_stack.py).
"""

import asyncio
import json
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from nats.errors import Error as NatsError

from shared.kernel.errors import OneError
from shared.kernel.ids import uuid7
from shared.tools.sdk import One
from shared.tools.stack import fetch_health
from tests.deploy.embedded_stack import Stack

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]
FAULTS = ("eventlog", "graph", "tenancy", "nats-server")
LOAD_BEFORE, LOAD_AFTER = 3.0, 8.0  # seconds of load before the kill and after it
FAULT_ERRORS = (OneError, NatsError, TimeoutError, OSError)  # what a caller sees while a component is down
OUT = Path(os.environ.get("ONE_CHAOS_OUT", ".bench/chaos.json"))


class Load:
    """Two writers at a steady pace: events (eventlog) and things (graph, whose events travel through its outbox)."""

    def __init__(self, one: One, run: str) -> None:
        self.one, self.run = one, run
        self.events: list[UUID] = []  # acked: the call returned
        self.things: list[UUID] = []
        self.failed = 0  # refused or timed out while the fault lasted: not acked, so not counted as lost
        self.stopping = False

    async def _events(self) -> None:
        seq = 0
        while not self.stopping:
            seq += 1
            try:
                appended = await self.one.events.publish(
                    "payment_event", id=uuid7(),
                    metadata={"protocol": "x402", "status": "processed", "amount": 1, "run": self.run, "seq": seq})
                self.events.append(appended.id)
            except FAULT_ERRORS:
                self.failed += 1
            await asyncio.sleep(0.05)

    async def _things(self) -> None:
        seq = 0
        while not self.stopping:
            seq += 1
            try:
                self.things.append((await self.one.things.create("blog_post", f"{self.run}-{seq}")).id)
            except FAULT_ERRORS:
                self.failed += 1
            await asyncio.sleep(0.05)

    async def run_for(self, before: float, fault, after: float) -> float:
        writers = [asyncio.create_task(self._events()), asyncio.create_task(self._things())]
        await asyncio.sleep(before)
        killed_at = time.monotonic()
        await fault()
        await asyncio.sleep(after)
        self.stopping = True
        await asyncio.gather(*writers)
        return killed_at


async def _stored_events(one: One, run: str) -> Counter:
    """How often each event of this run is stored, by id (a duplicate would be the same write stored twice)."""
    seen: Counter = Counter()
    after = None
    while True:
        page = await one.events.query(types=["payment_event"], metadata={"run": run}, limit=1000, after=after)
        seen.update(e.id for e in page.events)
        if page.next_cursor is None or not page.events:
            return seen
        after = page.next_cursor


async def _created_events(one: One, since) -> Counter:
    seen: Counter = Counter()
    after = None
    while True:
        page = await one.events.query(types=["entity_created"], since=since, limit=1000, after=after)
        seen.update(e.target_id for e in page.events)
        if page.next_cursor is None or not page.events:
            return seen
        after = page.next_cursor


async def _kill(stack: Stack, target: str) -> None:
    if target == "nats-server":
        stack.servers.nats.kill()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.servers.nats.start)  # the same store, the same port
        return
    os.kill(stack.supervisor.children[target].process.pid, signal.SIGKILL)


async def _healthy(stack: Stack) -> bool:
    try:
        reports = await fetch_health(stack.settings, timeout=1.0)
    except FAULT_ERRORS:
        return False
    return all(getattr(r, "healthy", False) for r in reports.values())


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory):
    running = Stack(tmp_path_factory.mktemp("chaos") / "data")
    try:
        yield await running.start()
    finally:
        await running.stop()


async def test_kill_nine_each_component_under_load_loses_and_duplicates_nothing(stack: Stack) -> None:
    bus = json.loads((stack.data_dir / "runtime.json").read_text())["nats_url"]
    async with await One.connect(nats_url=bus, key=stack.platform_key, name="chaos") as platform:
        created = await platform.orgs.create("Chaos", f"chaos-{uuid7().hex[:8]}",
                                             owner={"email": "chaos@one.test", "display_name": "Chaos"})
    rows = []
    for target in FAULTS:
        async with await One.connect(nats_url=bus, key=created.owner_key, timeout=3, name="chaos") as one:
            run = f"{target}-{uuid7().hex[:8]}"
            since = datetime.now(UTC) - timedelta(seconds=5)
            load = Load(one, run)
            killed_at = await load.run_for(LOAD_BEFORE, lambda target=target: _kill(stack, target), LOAD_AFTER)
            deadline = time.monotonic() + 180
            while True:  # until every acked write is queryable and every service healthy
                try:
                    stored = await _stored_events(one, run)
                    created_events = await _created_events(one, since)
                except FAULT_ERRORS:  # the killed service is not back yet
                    stored, created_events = Counter(), Counter()
                lost_events = sum(1 for e in load.events if stored[e] == 0)
                lost_things = sum(1 for t in load.things if created_events[t] == 0)
                if lost_events == 0 and lost_things == 0 and await _healthy(stack):
                    break
                assert time.monotonic() < deadline, f"{target}: {lost_events} events, {lost_things} things not found"
                await asyncio.sleep(0.5)
            rows.append({
                "fault": f"kill -9 {target}", "acked": len(load.events) + len(load.things), "failed": load.failed,
                "lost": lost_events + lost_things,
                "duplicates": sum(n - 1 for n in stored.values() if n > 1)
                + sum(created_events[t] - 1 for t in load.things if created_events[t] > 1),
                "recovery_seconds": round(time.monotonic() - killed_at, 1),  # from the kill (load runs LOAD_AFTER s more)
                "settled_after_load_seconds": round(time.monotonic() - killed_at - LOAD_AFTER, 1),
                "restarts": stack.supervisor.children[target].restarts if target in stack.supervisor.children else None,
            })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"load": {"writers": 2, "pace_seconds": 0.05}, "faults": rows}, indent=2) + "\n")
    for row in rows:
        assert row["lost"] == 0 and row["duplicates"] == 0, row
        assert row["acked"] > 0, row
