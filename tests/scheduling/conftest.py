"""Scheduling fixtures: the graph's org fixtures, and the notices reminders hand to the notification path."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from nats.aio.client import Client as NatsClient

from shared.contracts.scheduling import Notice
from shared.kernel import subjects
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import admin  # noqa: F401 (fixtures)


class Inbox:
    """What arrives on `one.notify.in_app`, with the monotonic-free wall time it arrived at."""

    def __init__(self) -> None:
        self.notices: list[tuple[Notice, float]] = []
        self.arrived = asyncio.Event()

    async def on_message(self, msg: Any) -> None:
        self.notices.append((Notice.model_validate_json(msg.data), time.time()))
        self.arrived.set()

    def for_reminders(self, ids: set[UUID]) -> list[tuple[Notice, float]]:
        return [(n, at) for n, at in self.notices if n.reminder_id in ids]

    async def wait_for(self, ids: set[UUID], timeout: float) -> list[tuple[Notice, float]]:
        deadline = time.monotonic() + timeout
        while len({n.reminder_id for n, _ in self.for_reminders(ids)}) < len(ids):
            left = deadline - time.monotonic()
            assert left > 0, f"{len(self.for_reminders(ids))} of {len(ids)} reminders arrived"
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                pass
        return self.for_reminders(ids)


@pytest.fixture
async def inbox(nc: NatsClient) -> AsyncIterator[Inbox]:
    box = Inbox()
    subscription = await nc.subscribe(subjects.notify("in_app"), cb=box.on_message)
    await nc.flush()
    yield box
    await subscription.unsubscribe()
