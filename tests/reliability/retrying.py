"""A client that keeps writing while a component is killed: each write is retried until it is acked, so a caller
that retries gets every write in exactly once, and what the outage looked like from outside is counted.

A write is named by a key the service keeps unique (an org slug, a label name, a discount code, a thing's
idempotency key): a retry of a write whose first try committed before the kill answers `conflict` (or the same
result again), never a second row.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from nats.errors import Error as NatsError

from shared.kernel.errors import Conflict, Internal, OneError

RETRYABLE = (OneError, NatsError, TimeoutError, OSError, httpx.TransportError)
"""What a caller sees while a component is down: no responders, a timeout, a refused or reset connection."""


@dataclass
class RetryingWriter:
    write: Callable[[str], Awaitable[object]]
    concurrency: int = 3
    pace: float = 0.05
    give_up_after: float = 120.0
    acked: list[str] = field(default_factory=list)
    answered_conflict: list[str] = field(default_factory=list)  # the first try had committed: its retry conflicts
    failed_tries: int = 0
    errors: list[str] = field(default_factory=list)  # the failed tries' errors, by class name

    async def one(self, key: str) -> None:
        deadline, tries = time.monotonic() + self.give_up_after, 0
        while True:
            tries += 1
            try:
                await self.write(key)
            except Conflict:
                assert tries > 1, f"{key}: conflict on the first try"
                self.answered_conflict.append(key)
            except Internal:
                raise  # a 5xx-like answer is not a clean failure
            except RETRYABLE as error:
                self.failed_tries += 1
                self.errors.append(type(error).__name__)
                assert time.monotonic() < deadline, f"{key}: not acked after {self.give_up_after} s: {error!r}"
                await asyncio.sleep(0.2)
                continue
            self.acked.append(key)
            return

    async def stream(self, keys: list[str], fault: Callable[[], object], fault_after: int) -> None:
        """Write `keys` (`concurrency` at a time, `pace` apart); call `fault` once `fault_after` writes are acked."""
        pending: asyncio.Queue[str] = asyncio.Queue()
        for key in keys:
            pending.put_nowait(key)

        async def worker() -> None:
            while not pending.empty():
                await self.one(pending.get_nowait())
                await asyncio.sleep(self.pace)

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        try:
            while len(self.acked) < fault_after and not all(w.done() for w in workers):
                await asyncio.sleep(0.01)
            fault()
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
