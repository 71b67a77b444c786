"""Wakes waiting tails when the ingest commits an org's events, on any replica.

The ingest publishes `one.eventlog.committed.<org_id>` after each commit; every
replica listens and sets the events of that org's waiters. A tail registers its
waiter *before* it queries, so a commit between the query and the wait is not
missed; a lost notification costs at most `POLL_INTERVAL` of extra latency.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.kernel import subjects

POLL_INTERVAL = 1.0
COMMITTED_ANY = subjects.command("eventlog", "committed.*")


def committed_subject(org_id: UUID | str) -> str:
    """Published (core NATS) after each ingest commit, so waiting tails wake at once."""
    return subjects.command("eventlog", f"committed.{org_id}")


class CommitNotifier:
    """One replica's waiting tails, by org, woken by the commits any replica announces."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._subscription: Subscription | None = None

    async def start(self, nc: NatsClient) -> None:
        self._subscription = await nc.subscribe(COMMITTED_ANY, cb=self._on_commit)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def _on_commit(self, msg: Msg) -> None:
        for event in self._waiters.get(msg.subject.rsplit(".", 1)[-1], ()):
            event.set()

    @contextmanager
    def waiter(self, org_id: UUID) -> Iterator[asyncio.Event]:
        key = str(org_id)
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]
