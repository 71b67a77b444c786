"""The graph's hot statements (a create's insert, a traversal) run on the transaction's asyncpg connection.

Through SQLAlchemy each statement pays its execution machinery (execution context, the adapter's cursor
emulation and greenlet hop, result wrapping: ~180 µs of CPU more than on asyncpg, shared/runtime/sql.py), and a
traversal or a create is little else. These statements are built as text with `:name` parameters, as
SQLAlchemy's `text` takes them, because their shape varies (a traversal's filters, a caller's scope rule):
`fetch` numbers the names once per shape (`$1`, `$2`, ...) and runs the statement with `shared.runtime.sql.Sql`,
in the same transaction (same connection, BEGIN and tenant) as the rest of the unit of work.

The statements written for it use no `:` but in their parameters and `::` casts (no string literal holds one).
"""

import functools
import re
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.runtime.sql import Sql

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
"""`:name`, but not the second colon of a `::type` cast nor a colon inside a word."""


@functools.lru_cache(maxsize=512)
def numbered(text: str) -> tuple[Sql, tuple[str, ...]]:
    """The statement with `$n` for each `:name` (a name used twice is one parameter), and the names in order."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${names.setdefault(match.group(1), len(names) + 1)}"

    return Sql(_NAMED.sub(number, text)), tuple(names)


async def fetch(session: AsyncConnection, text: str, params: Mapping[str, Any]) -> list[asyncpg.Record]:
    """Every row of the statement `text` given its named `params`, on the transaction's own connection."""
    statement, names = numbered(text)
    return await statement.fetch(session, *(params[name] for name in names))
