"""Waiting in a test for something another task or process does, with a deadline."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def until(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """Poll `condition` until it returns something truthy, and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
    return result


async def until_async(condition: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.1) -> T:
    """`until` for a condition that has to ask (a bus request, a query)."""
    deadline = time.monotonic() + timeout
    while not (result := await condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
    return result
