"""Run a coroutine at once, and give it a task of its own only if it has to wait.

Python 3.12's eager tasks do this; on 3.11 a task per message costs as much as a
cached `tenancy.key.verify` itself (creating it, scheduling its first step, its
done callback), although most such handlers answer without ever waiting.

`start_eagerly(coro)` runs `coro` up to its first real suspension in a copy of
the current context. If it finished, it returns None; otherwise the rest runs in
a new task (same context), which it returns.

The catch, and why handlers opt in: until its first suspension the coroutine
runs inside the caller's task, so it must not capture `asyncio.current_task()`
before its first await (`asyncio.timeout()`, `asyncio.TaskGroup`); anything
that needs a task should run in one it creates.
"""

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any


def start_eagerly(coro: Coroutine[Any, Any, None]) -> "asyncio.Task[None] | None":
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(coro.send, None)
    except StopIteration:
        return None
    if getattr(waiting_on, "_asyncio_future_blocking", False):
        # Take the future as a task would (lower the flag its `await` raised), so another coroutine
        # started eagerly may await it too; `_Resumed` raises it again for the task below.
        waiting_on._asyncio_future_blocking = False
    return asyncio.get_running_loop().create_task(_finish(coro, waiting_on), context=context)


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    await _Resumed(coro, waiting_on)


class _Resumed:
    """Awaitable for the rest of `coro`, which already yielded `waiting_on` to its (absent) task.

    It passes what the task hands it (results, exceptions, cancellation) into
    `coro`, as `await coro` would have from the start.
    """

    __slots__ = ("_coro", "_waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coro, self._waiting_on = coro, waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        coro, step = self._coro, self._waiting_on
        if getattr(step, "_asyncio_future_blocking", None) is not None:
            step._asyncio_future_blocking = True  # as the future's `await` left it (start_eagerly lowered it)
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as error:  # noqa: BLE001 - cancellation and errors go into `coro`, as with `await`
                advance, value = coro.throw, error
            else:
                advance, value = coro.send, sent
            try:
                step = advance(value)
            except StopIteration:
                return
