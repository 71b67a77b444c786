"""Per-replica state of the agents service: model providers, the runs this replica works on, its background tasks.

Kept on the runtime (`runtime.state`), not in module globals, so several replicas can run in one
process, as the tests do. Created by the first of `of` or the start hook, whichever comes first.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx

from services.agents.providers import Providers
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass
class AgentsState:
    providers: Providers
    replica: str = field(default_factory=lambda: f"agents-{uuid4().hex[:12]}")
    running: dict[UUID, asyncio.Task[Any]] = field(default_factory=dict)
    """The runs this replica works on (and holds the leases of), by run id."""
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(follow_redirects=False))
    leases: asyncio.Task[None] | None = None
    jobs: Any = None  # the jobs workers' own state, when this replica runs them
    tallies: dict[Hashable, int] = field(default_factory=dict)
    """Counts waiting for their key's writer (`tally`): present while that writer runs."""

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Background work this replica owns: kept referenced until done, awaited when the replica stops."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def tally(self, key: Hashable, amount: int, write: Callable[[int], Awaitable[None]], name: str,
              gather: float = 0.0) -> None:
        """Add `amount` to `key`'s count, written by one task per key at a time: what is added while it writes goes
        in its next write. Concurrent requests then queue on no row lock and hold no connection while they wait
        (16 A2A messages of one caller had 16 transactions on its tally row, each holding a pooled connection).
        `gather`: seconds the writer waits before each write, so that a caller's messages one after the other are
        counted in one write too (a stopping replica still writes them: its tasks are awaited)."""
        waiting = self.tallies.get(key)
        self.tallies[key] = (waiting or 0) + amount
        if waiting is None:
            self.spawn(self._write_tally(key, write, gather), name=name)

    async def _write_tally(self, key: Hashable, write: Callable[[int], Awaitable[None]], gather: float) -> None:
        try:
            while True:
                if gather:
                    await asyncio.sleep(gather)  # what is added meanwhile joins this write
                amount = self.tallies.get(key, 0)
                if not amount:
                    return
                self.tallies[key] = 0
                await write(amount)
        finally:
            self.tallies.pop(key, None)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("agents background task %s failed", task.get_name(), exc_info=task.exception())


def of(runtime: ServiceRuntime) -> AgentsState:
    """This replica's state (the runtime holds it untyped)."""
    if runtime.state is None:
        runtime.state = AgentsState(Providers(runtime.settings))
    return runtime.state
