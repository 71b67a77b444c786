"""Hot statements, run on the transaction's own asyncpg connection instead of through SQLAlchemy's execution.

A statement through SQLAlchemy Core costs ~300 µs of client CPU (execution context, event dispatch, the
asyncpg adapter's cursor emulation and greenlet hop, result wrapping); the same statement on asyncpg costs
~120 µs (tests/bench/bench_sql.py measures both side by side). Every request of a service runs a handful of
statements, so the few that every request runs (the outbox's insert, a checkout's session reads and writes,
idempotency records) are written here as SQL for asyncpg: `$1`-style parameters, jsonb parameters passed as
JSON text and jsonb columns read back decoded (the codecs SQLAlchemy installs on each connection). They run
in the same transaction as everything else of the unit of work: same connection, same BEGIN, same tenant.

A statement whose shape varies (a traversal's filters, a caller's scope rule) or that is shared as text with
SQLAlchemy's `text` (the outbox's `insert_select`) is written with `:name` parameters: `named(text)` numbers them
once per text (`$1`, `$2`, ...; a name used twice is one parameter) and takes the values by name. Such a text uses
no `:` but in its parameters and `::` casts (no string literal holds one).

A statement under a sampled request gets the same CLIENT span SQLAlchemy's instrumentation would give it
(`<VERB> <database>`, `db.system`, `db.statement`), so a trace still reaches SQL.
"""

import functools
import re
from collections.abc import Mapping
from typing import Any

import asyncpg
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.runtime.tracing import sql_span

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
"""`:name`, but not the second colon of a `::type` cast nor a colon inside a word."""


def driver(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under an open transaction's `connection` (`Database.transaction`)."""
    return connection.sync_connection.connection.dbapi_connection.driver_connection  # type: ignore[union-attr]


class Sql:
    """One statement for asyncpg, run in a transaction of `Database.transaction`."""

    __slots__ = ("text", "_verb")

    def __init__(self, text: str) -> None:
        self.text = text
        self._verb = text.split(None, 1)[0].upper()

    def _span(self, connection: asyncpg.Connection) -> trace.Span | None:
        return sql_span(self._verb, connection._params.database, self.text)  # noqa: SLF001 - the name it reports

    async def fetch(self, tx: AsyncConnection, *args: Any, timeout: float | None = None) -> list[asyncpg.Record]:
        """Every row the statement returns; `timeout` (seconds) cancels it when it runs longer (`TimeoutError`)."""
        connection = driver(tx)
        span = self._span(connection)
        if span is None:
            return await connection.fetch(self.text, *args, timeout=timeout)
        with trace.use_span(span, end_on_exit=True):
            return await connection.fetch(self.text, *args, timeout=timeout)

    async def fetchrow(self, tx: AsyncConnection, *args: Any) -> asyncpg.Record | None:
        """The first row, or None."""
        rows = await self.fetch(tx, *args)
        return rows[0] if rows else None

    async def execute(self, tx: AsyncConnection, *args: Any) -> int:
        """How many rows the statement changed (its command tag's count)."""
        connection = driver(tx)
        span = self._span(connection)
        if span is None:
            tag = await connection.execute(self.text, *args)
        else:
            with trace.use_span(span, end_on_exit=True):
                tag = await connection.execute(self.text, *args)
        count = tag.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else 0


class NamedSql:
    """A statement written with `:name` parameters, numbered for asyncpg (`named`)."""

    __slots__ = ("sql", "names")

    def __init__(self, text: str) -> None:
        numbers: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

        self.sql = Sql(_NAMED.sub(number, text))
        self.names = tuple(numbers)

    def _args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def fetch(self, tx: AsyncConnection, params: Mapping[str, Any]) -> list[asyncpg.Record]:
        return await self.sql.fetch(tx, *self._args(params))

    async def execute(self, tx: AsyncConnection, params: Mapping[str, Any]) -> int:
        return await self.sql.execute(tx, *self._args(params))


@functools.lru_cache(maxsize=512)
def named(text: str) -> NamedSql:
    """`text`, numbered once (the same object for the same text)."""
    return NamedSql(text)
