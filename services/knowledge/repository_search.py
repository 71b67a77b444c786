"""The SQL of search, on its own asyncpg pool: k-NN through the HNSW index or exact, full-text
candidates, label candidates.

Search is the hot path, so it skips the ORM layer that every other statement goes through:
asyncpg directly (prepared statements cached per connection, vectors in pgvector's binary
form), no pre-ping, and the tenant and `hnsw.ef_search` set in one statement, so a search
costs three round trips (BEGIN with the settings, the query, COMMIT) and no connection reset.
The tenant is still set per transaction and RLS still applies (the pool connects as the
application role).

The index is an expression index over `embedding::vector(384)` (cosine) on rows of that
dimension: `ann` orders by that same expression (the dimension is written into the statement,
so a cached plan can prove the index's predicate), and Postgres walks the graph; `exact` orders
by the bare column, which no index matches, so Postgres computes every distance of the org's
rows (found through `items_searchable`). pgvector 0.6 filters *after* the index scan: `ann` may
return fewer than k rows when other orgs' vectors crowd the candidates; the caller widens
`ef_search` or falls back to `exact` (see search.py).
"""

import struct
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from pydantic_core import from_json, to_json

from services.knowledge.models import ITEM_COLUMNS

INDEXED_DIMS = frozenset({384})
"""Dimensions with an HNSW index (migrations/v0002); other dimensions are always searched exactly."""

_COLUMNS = ", ".join(f"i.{c.name}" for c in ITEM_COLUMNS)
Record = asyncpg.Record


def _encode_vector(values: Sequence[float]) -> bytes:
    return struct.pack(f">HH{len(values)}f", len(values), 0, *values)


def _decode_vector(data: bytes) -> list[float]:
    dim, _ = struct.unpack_from(">HH", data)
    return list(struct.unpack_from(f">{dim}f", data, 4))


async def _release(conn: asyncpg.Connection) -> None:
    """On release, only an unfinished transaction needs undoing: every use is one transaction whose
    settings are LOCAL to it (asyncpg's default reset would cost a round trip per search)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _setup(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("vector", schema="public", encoder=_encode_vector, decoder=_decode_vector,
                              format="binary")
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=lambda v: to_json(v).decode(), decoder=from_json)


class SearchDb:
    """The search pool of one replica."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size = url, size
        self.pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.size, init=_setup, reset=_release)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @asynccontextmanager
    async def transaction(self, org_id: UUID, ef_search: int) -> AsyncIterator[asyncpg.Connection]:
        assert self.pool is not None, "search pool used before start()"
        async with self.pool.acquire() as conn:
            # one round trip: BEGIN and the transaction's settings (a UUID and an int: nothing to escape)
            await conn.execute(f"BEGIN; SELECT set_config('app.org_id', '{UUID(str(org_id))}', true), "
                               f"set_config('hnsw.ef_search', '{int(ef_search)}', true)")
            yield conn  # on an exception, the release below rolls back
            await conn.execute("COMMIT")


@dataclass(frozen=True)
class Filters:
    org_id: UUID
    model: str
    dim: int
    knowledge_types: Sequence[str] = ("chunk", "vector_only")
    source_thing_types: Sequence[str] = ()
    source_thing_id: UUID | None = None
    labels: Sequence[str] = ()

    def where(self) -> tuple[str, list[Any]]:
        """The conditions every candidate query shares, and their parameters ($1.. in order; never spliced)."""
        params: list[Any] = [self.org_id, self.model, list(self.knowledge_types)]
        clauses = [
            "i.org_id = $1", "i.embedding_model = $2", f"i.embedding_dim = {int(self.dim)}",
            "i.embedding IS NOT NULL", "i.deleted_at IS NULL", "i.archived_at IS NULL", "i.knowledge_type = ANY($3)",
        ]
        if self.source_thing_types:
            params.append(list(self.source_thing_types))
            clauses.append(f"i.source_thing_type = ANY(${len(params)})")
        if self.source_thing_id:
            params.append(self.source_thing_id)
            clauses.append(f"i.source_thing_id = ${len(params)}")
        if self.labels:
            params.append(list(self.labels))
            clauses.append(f"i.labels @> ${len(params)}::text[]")
        return " AND ".join(clauses), params


async def count_up_to(conn: asyncpg.Connection, filters: Filters, limit: int) -> int:
    """How many rows match, counting no further than `limit` (bounded cost for a large org)."""
    where, params = filters.where()
    n = len(params) + 1
    return int(await conn.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM knowledge.items i WHERE {where} LIMIT ${n}) s",
                                   *params, limit))


async def set_ef_search(conn: asyncpg.Connection, ef_search: int) -> None:
    await conn.execute("SELECT set_config('hnsw.ef_search', $1, true)", str(ef_search))


async def ann(conn: asyncpg.Connection, filters: Filters, vector: Sequence[float], k: int) -> list[Record]:
    """Through the index: the same expression as the index's, the dimension written in."""
    dim = int(filters.dim)
    return await _nearest(conn, filters, vector, k, lambda q: f"i.embedding::vector({dim}) <=> ${q}::vector({dim})")


async def exact(conn: asyncpg.Connection, filters: Filters, vector: Sequence[float], k: int) -> list[Record]:
    """Every distance of the org's rows: the bare column matches no index."""
    return await _nearest(conn, filters, vector, k, lambda q: f"i.embedding <=> ${q}::vector", tiebreak=", i.id")


async def _nearest(conn: asyncpg.Connection, filters: Filters, vector: Sequence[float], k: int,
                   distance_to: Callable[[int], str], tiebreak: str = "") -> list[Record]:
    """The k nearest by `distance_to(n)`, the distance to the vector in parameter $n."""
    where, params = filters.where()
    distance = distance_to(len(params) + 1)
    return await conn.fetch(
        f"SELECT {_COLUMNS}, 1 - ({distance}) AS similarity FROM knowledge.items i WHERE {where} "
        f"ORDER BY {distance}{tiebreak} LIMIT ${len(params) + 2}", *params, vector, k)


async def lexical(conn: asyncpg.Connection, filters: Filters, query: str, limit: int) -> list[Record]:
    """Full-text candidates: any of the query's stemmed words (OR), ranked by cover density."""
    where, params = filters.where()
    text, lim = len(params) + 1, len(params) + 2
    return await conn.fetch(f"""
        WITH q AS (
            SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(word), ' | '), '')) AS query
            FROM unnest(tsvector_to_array(to_tsvector('english', ${text}))) AS word
        )
        SELECT {_COLUMNS}, ts_rank_cd(i.tsv, q.query) AS rank
        FROM knowledge.items i, q
        WHERE {where} AND i.tsv @@ q.query
        ORDER BY rank DESC, i.id LIMIT ${lim}
    """, *params, query, limit)


async def by_labels(conn: asyncpg.Connection, filters: Filters, boost: Sequence[str], limit: int) -> list[Record]:
    """Candidates carrying any of `boost`, those with more of them first."""
    where, params = filters.where()
    labels, lim = len(params) + 1, len(params) + 2
    return await conn.fetch(f"""
        SELECT {_COLUMNS},
               cardinality(ARRAY(SELECT unnest(i.labels) INTERSECT SELECT unnest(${labels}::text[]))) AS matched
        FROM knowledge.items i
        WHERE {where} AND i.labels && ${labels}::text[]
        ORDER BY matched DESC, i.id LIMIT ${lim}
    """, *params, list(boost), limit)


async def similarities(conn: asyncpg.Connection, org_id: UUID, ids: Sequence[UUID], vector: Sequence[float]) -> dict[UUID, float]:
    rows = await conn.fetch(f"""
        SELECT id, 1 - (embedding <=> $3::vector) AS similarity FROM knowledge.items
        WHERE org_id = $1 AND id = ANY($2::uuid[]) AND embedding_dim = {len(vector)}
    """, org_id, list(ids), vector)
    return {row["id"]: float(row["similarity"]) for row in rows}
