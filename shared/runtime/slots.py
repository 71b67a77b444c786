"""A bound on the messages a subscriber has in progress, checked without a coroutine call.

When every slot is taken the subscription stops taking messages and NATS buffers
them: back-pressure, not an unbounded number of tasks. Unlike `asyncio.Semaphore`
the check is a plain comparison, and a message can take its slot after it
started: an eagerly started handler (`shared.runtime.eager`) that answered at once never
needs one.
"""

import asyncio


class Slots:
    def __init__(self, limit: int) -> None:
        self.free = limit
        self._freed: asyncio.Future[None] | None = None

    async def wait_for_one(self) -> None:
        """Return once a slot is free (without taking it)."""
        while self.free <= 0:
            if self._freed is None:
                self._freed = asyncio.get_running_loop().create_future()
            await self._freed

    def take(self) -> None:
        self.free -= 1

    def give(self) -> None:
        self.free += 1
        freed, self._freed = self._freed, None
        if freed is not None and not freed.done():
            freed.set_result(None)
