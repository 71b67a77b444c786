"""A replica's background loop over due work: rounds of at most `batch`, then a nap of `poll` seconds (or until
`poke()`), for as long as the replica runs.

Commerce's webhook deliveries, checkout settlements and AP2 graph writes are each rows a request left in the
database for later; every replica takes its share in rounds (`round()` claims rows with a lease and works
them, returning how many it took). A full round goes again at once; a failed round is logged and retried
after the nap; a cancellation — also one a database driver turned into its own error — ends the loop, so a
replica always stops.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

log = logging.getLogger(__name__)


class Rounds:
    def __init__(self, name: str, *, batch: int, poll: float) -> None:
        self.name, self.batch, self.poll = name, batch, poll
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def round(self) -> int:
        """Work what is due (at most `batch`); how many were taken."""
        raise NotImplementedError

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    def poke(self) -> None:
        """There is work now: end the nap."""
        self.wake.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def _run(self) -> None:
        while True:
            taken = 0
            try:
                taken = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # a cancellation the driver turned into its own error
                    return
                log.exception("%s: round failed", self.name)
            if taken < self.batch:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), self.poll)
                except TimeoutError:
                    pass


class PerReplica:
    """One loop per service replica (two may share a process, as in tests): `start` and `stop` are the service's
    `on_start` / `on_stop` hooks."""

    def __init__(self, make: Callable[[Any], Rounds]) -> None:
        self.make = make
        self.loops: WeakKeyDictionary[Any, Rounds] = WeakKeyDictionary()

    async def start(self, runtime: Any) -> None:
        loop = self.loops[runtime] = self.make(runtime)
        loop.start()

    async def stop(self, runtime: Any) -> None:
        loop = self.loops.pop(runtime, None)
        if loop is not None:
            await loop.stop()
