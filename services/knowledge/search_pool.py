"""A few asyncpg connections for the search path, handed out with nothing else to do.

Why not `asyncpg.Pool`: measured on the search bench, its acquire and release cost about
80 µs of CPU per search (a timeout scope, a shielded release task, inactivity timers, the
reset bookkeeping), a tenth of the service's own work per search. A search needs none of
it: every use is one statement or one transaction, its settings LOCAL to it.

The rules that keep it safe:
- a connection is opened when none is idle and fewer than `size` exist, else the caller
  waits its turn (first come, first served);
- a use that ends with an exception (a failed statement, a lost server, a cancelled
  request) closes that connection: its state is unknown, and a fresh one costs one connect;
- a use that ends normally with a transaction still open is rolled back before reuse.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncpg


class SearchPool:
    def __init__(self, url: str, size: int, setup: Callable[[asyncpg.Connection], Awaitable[None]],
                 server_settings: dict[str, str] | None = None) -> None:
        self.url, self.size, self._setup, self._server_settings = url, size, setup, server_settings or {}
        self._idle: list[asyncpg.Connection] = []
        self._waiting: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._open = 0  # connections that exist or are being opened
        self._closed = False

    async def start(self) -> None:
        """Open one connection now, so a wrong URL or password fails at start-up."""
        self._open += 1
        self._idle.append(await self._connect())

    def acquire(self) -> "_Lease":
        return _Lease(self)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the search pool is closed"))
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the search pool is closed")
        if self._idle:
            return self._idle.pop()
        if self._open < self.size:
            self._open += 1
            return await self._connect()
        waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            conn = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._pass_on(waiter.result())  # handed over just as we were cancelled
            raise
        return conn if conn is not None else await self._connect()

    async def _connect(self) -> asyncpg.Connection:
        """A new connection in a slot already counted in `_open`."""
        try:
            conn = await asyncpg.connect(self.url, server_settings=self._server_settings)
            await self._setup(conn)
        except BaseException:
            self._pass_on(None)
            raise
        return conn

    def _pass_on(self, conn: asyncpg.Connection | None) -> None:
        """Hand a connection, or a free slot (None) to open one in, to the first waiter; else keep it."""
        if self._closed:
            if conn is not None:
                conn.terminate()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._open -= 1
        else:
            self._idle.append(conn)

    async def _release(self, conn: asyncpg.Connection, failed: bool) -> None:
        if not failed and not conn.is_closed() and conn.is_in_transaction():
            try:
                await conn.execute("ROLLBACK")
            except BaseException:
                self._drop(conn)
                raise
        if failed or conn.is_closed():
            self._drop(conn)
        else:
            self._pass_on(conn)

    def _drop(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        self._pass_on(None)


class _Lease:
    """`async with pool.acquire() as conn:` (a class, not a generator: it is on every search)."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: SearchPool) -> None:
        self._pool = pool

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await self._pool._take()
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> Any:
        await self._pool._release(self._conn, exc_type is not None)
