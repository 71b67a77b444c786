"""The fault suite on a real `one up`-style stack (secure, supervised): under a steady load of event publishes and
thing creates, kill -9 in turn the event-log service, the graph service, tenancy, nats-server, graph's outbox relay
mid-batch, a Postgres backend and the whole Postgres server (the last three: tests/reliability/chaos_faults.py;
servers are restarted on the same data by the stack's supervisor, as `one up` does), and measure for each: writes
acked, writes committed, acked writes lost (must be 0), duplicates stored (must be 0), seconds until writes go
through again, seconds until every acked write is queryable and every service healthy again, with no human in
between.

Marked `chaos` (minutes, not seconds): `make chaos` runs it and writes the table to .bench/chaos.json. One kill -9
per component runs in `make test` (tests/reliability/kills/ and the others in docs/reliability.md).
"""

import asyncio
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from nats.errors import Error as NatsError

from shared.kernel.errors import OneError
from shared.kernel.ids import uuid7
from shared.tools.sdk import One
from shared.tools.stack import fetch_health
from tests.deploy.embedded_stack import Stack
from tests.reliability.chaos_faults import inject, restarts

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]
FAULTS = ("eventlog", "graph", "tenancy", "nats-server", "outbox relay mid-batch", "postgres backend",
          "postgres server")
BURST = 100  # thing creates at once, so graph's relay has whole batches to publish when it is killed
LOAD_BEFORE, LOAD_AFTER = 3.0, 8.0  # seconds of load before the kill and after it (longer if writes still fail)
WRITES_BACK_WITHIN = 120.0
FAULT_ERRORS = (OneError, NatsError, TimeoutError, OSError)  # what a caller sees while a component is down
OUT = Path(os.environ.get("ONE_CHAOS_OUT", ".bench/chaos.json"))


class Load:
    """Two writers at a steady pace: events (eventlog) and things (graph, whose events travel through its outbox)."""

    def __init__(self, one: One, run: str) -> None:
        self.one, self.run = one, run
        self.events: list[UUID] = []  # acked: the call returned
        self.things: list[UUID] = []
        self.failed = 0  # refused or timed out while the fault lasted: not acked, so not counted as lost
        self.back_at: dict[str, float] = {}  # per kind of write that failed: its first ack after its last failure
        self.stopping = False

    def _acked(self, kind: str) -> None:
        if self.back_at.get(kind) == 0.0:
            self.back_at[kind] = time.monotonic()

    def _failed(self, kind: str) -> None:
        self.failed += 1
        self.back_at[kind] = 0.0

    @property
    def writes_back(self) -> bool:
        return all(self.back_at.values())

    def writes_back_after(self, killed_at: float) -> float:
        """Seconds from the kill until every kind of write went through again (0: no write ever failed)."""
        return round(max(0.0, max(self.back_at.values(), default=killed_at) - killed_at), 1)

    async def _events(self) -> None:
        seq = 0
        while not self.stopping:
            seq += 1
            try:
                appended = await self.one.events.publish(
                    "payment_event", id=uuid7(),
                    metadata={"protocol": "x402", "status": "processed", "amount": 1, "run": self.run, "seq": seq})
                self.events.append(appended.id)
                self._acked("events")
            except FAULT_ERRORS:
                self._failed("events")
            await asyncio.sleep(0.05)

    async def _things(self) -> None:
        seq = 0
        while not self.stopping:
            seq += 1
            try:
                self.things.append((await self.one.things.create("blog_post", f"{self.run}-{seq}")).id)
                self._acked("things")
            except FAULT_ERRORS:
                self._failed("things")
            await asyncio.sleep(0.05)

    async def burst(self) -> None:
        async def create(n: int) -> None:
            try:
                self.things.append((await self.one.things.create("blog_post", f"{self.run}-burst-{n}")).id)
                self._acked("things")
            except FAULT_ERRORS:
                self._failed("things")

        await asyncio.gather(*(create(n) for n in range(BURST)))

    async def run_for(self, before: float, fault, after: float) -> tuple[float, float, dict]:
        """Load, fault, `after` seconds more load and on until writes go through again (at most WRITES_BACK_WITHIN):
        when the fault happened, when the load ended, and what the fault saw."""
        writers = [asyncio.create_task(self._events()), asyncio.create_task(self._things())]
        await asyncio.sleep(before)
        killed_at = time.monotonic()
        seen = await fault()
        await asyncio.sleep(after)
        while not self.writes_back:
            assert time.monotonic() - killed_at < WRITES_BACK_WITHIN, "writes never went through again"
            await asyncio.sleep(0.1)
        self.stopping = True
        await asyncio.gather(*writers)
        return killed_at, time.monotonic(), seen


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
            since = datetime.now(UTC)  # this run's things only: `committed` counts the created events since
            load = Load(one, run)
            restarted_before = restarts(stack, target)
            killed_at, load_ended, seen = await load.run_for(
                LOAD_BEFORE, lambda target=target, load=load: inject(stack, target, load.burst), LOAD_AFTER)
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
                "committed": len(stored) + sum(1 for n in created_events.values() if n > 0),
                "lost": lost_events + lost_things,
                "duplicates": sum(n - 1 for n in stored.values() if n > 1)
                + sum(created_events[t] - 1 for t in load.things if created_events[t] > 1),
                "recovery_seconds": load.writes_back_after(killed_at),  # the kill to writes going through again
                "settled_after_load_seconds": round(time.monotonic() - load_ended, 1),  # every acked write queryable
                "restarts": restarts(stack, target) - restarted_before, "healthy_again": True, **seen,  # all healthy
            })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"load": {"writers": 2, "pace_seconds": 0.05}, "faults": rows}, indent=2) + "\n")
    for row in rows:
        assert row["lost"] == 0 and row["duplicates"] == 0, row
        assert row["acked"] > 0, row
