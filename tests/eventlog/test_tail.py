"""Live tail: a reader that drops and resumes from its cursor sees every event exactly once."""

import asyncio
import contextlib

import pytest

from shared.contracts.eventlog import EventRecord
from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient
from shared.tools.sdk.events import Events
from tests.polling import until

pytestmark = pytest.mark.usefixtures("services")


async def read_until(client: Events, into: list[EventRecord], n: int, **filters) -> None:
    async for event in client.tail(wait=2.0, **filters):
        into.append(event)
        if len(into) >= n:
            return


async def test_tail_that_reconnects_from_its_cursor_sees_every_event_exactly_once(
    bus: BusClient, events: Events, org: AuthContext
) -> None:
    reader = Events.over_bus(bus, org)
    seen: list[EventRecord] = []
    first = asyncio.create_task(read_until(reader, seen, 30))
    published = []

    async def publish_wave(n: int) -> None:
        for _ in range(n):
            published.append((await events.publish("user_login")).id)

    await publish_wave(10)
    await until(lambda: len(seen) >= 10, timeout=15)
    first.cancel()  # the reader drops ...
    with contextlib.suppress(asyncio.CancelledError):
        await first
    cursor = reader.cursor
    await publish_wave(15)  # ... events keep coming while it is away ...
    resumed = Events.over_bus(bus, org)  # ... and a new connection resumes from the cursor
    second = asyncio.create_task(_resume(resumed, seen, cursor))
    await publish_wave(15)
    await asyncio.wait_for(second, 20)
    ids = [e.id for e in seen]
    assert sorted(ids) == sorted(published)  # every one ...
    assert len(ids) == len(set(ids))  # ... exactly once ...
    assert [e.position for e in seen] == sorted(e.position for e in seen)  # ... in order


async def _resume(client: Events, seen: list[EventRecord], cursor: int) -> None:
    async for event in client.tail(after=cursor, wait=2.0):
        seen.append(event)
        if len(seen) >= 40:
            return


async def test_tail_with_filters_returns_only_matching_events_and_waits_for_them(
    events: Events, org: AuthContext
) -> None:
    waiting = asyncio.create_task(events.tail_page(after=0, wait=10, types=["payment_event"], protocols=["ap2"]))
    await asyncio.sleep(0.3)
    await events.publish("user_login")
    await events.publish("payment_processed", metadata={"protocol": "x402", "amount": 1})
    wanted = await events.publish("payment_processed", metadata={"protocol": "ap2", "amount": 2})
    page = await asyncio.wait_for(waiting, 12)
    assert [e.id for e in page.events] == [wanted.id]
    assert page.cursor == page.events[-1].position


async def test_tail_with_nothing_new_returns_its_own_cursor(events: Events) -> None:
    page = await events.tail_page(after=123, wait=0.2)
    assert (page.events, page.cursor) == ([], 123)
