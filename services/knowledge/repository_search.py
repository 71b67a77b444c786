"""The SQL of search, on its own connections: k-NN through the HNSW index or exact, full-text
candidates, label candidates.

Search is the hot path, so it skips the ORM layer that every other statement goes through:
asyncpg directly (prepared statements cached per connection, vectors in pgvector's binary
form) on connections of its own (`SearchPool`: no pre-ping, no reset, little else). A search
through the index is one round trip: the function `knowledge.nearest_<dim>` (migrations/v0003,
v0005, v0006) sets the tenant and `hnsw.ef_search` for its own statement and runs the query. Everything
else runs in `SearchDb.transaction`, whose BEGIN carries the tenant (three round trips:
BEGIN, the query, COMMIT). Either way the tenant is set per transaction and RLS applies (the
pool connects as the application role).

Each indexed size has an expression index over `embedding::vector(<dim>)` (cosine) on rows
of that dimension: `ann` orders by that same expression, and Postgres walks the graph; `exact` orders by the bare column, which no index matches, so Postgres computes
every distance of the org's rows (found through `items_searchable`). pgvector 0.6 filters *after* the index scan: `ann` may
return fewer than k rows when other orgs' vectors crowd the candidates; the caller widens
`ef_search` or falls back to `exact` (see search.py).
"""

import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from pydantic_core import from_json, to_json

from services.knowledge.models import ITEM_COLUMNS
from services.knowledge.search_pool import SearchPool

INDEXED_DIMS = frozenset({384, 768, 1024, 1536})
"""Dimensions with an HNSW index and a `knowledge.nearest_<dim>` function (migrations/v0002, v0003,
v0005); other dimensions are always searched exactly."""
_NEAREST = {dim: f"SELECT * FROM knowledge.nearest_{dim}($1, $2, $3, $4, $5, $6, $7, $8, $9)" for dim in INDEXED_DIMS}

_COLUMNS = ", ".join(f"i.{c.name}" for c in ITEM_COLUMNS)
Record = asyncpg.Record


def _encode_vector(values: Sequence[float]) -> bytes:
    return struct.pack(f">HH{len(values)}f", len(values), 0, *values)


def _decode_vector(data: bytes) -> list[float]:
    dim, _ = struct.unpack_from(">HH", data)
    return list(struct.unpack_from(f">{dim}f", data, 4))


async def _setup(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("vector", schema="public", encoder=_encode_vector, decoder=_decode_vector,
                              format="binary")
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=lambda v: to_json(v).decode(), decoder=from_json)


class SearchDb:
    """The search pool of one replica."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size = url, size
        self.pool: SearchPool | None = None

    async def start(self) -> None:
        self.pool = SearchPool(self.url, self.size, _setup, {"application_name": "knowledge-search"})
        await self.pool.start()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @asynccontextmanager
    async def transaction(self, org_id: UUID) -> AsyncIterator[asyncpg.Connection]:
        assert self.pool is not None, "search pool used before start()"
        async with self.pool.acquire() as conn:
            # one round trip: BEGIN and the tenant (a UUID: nothing to escape)
            await conn.execute(f"BEGIN; SELECT set_config('app.org_id', '{UUID(str(org_id))}', true)")
            yield conn  # on an exception, the pool closes the connection: nothing half-done is reused
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


async def ann(db: SearchDb, filters: Filters, vector: Sequence[float], k: int, ef_search: int) -> list[Record]:
    """Through the index, in one statement (see `knowledge.nearest_<dim>`); unused filters are NULL."""
    assert filters.dim in INDEXED_DIMS, f"no index for {filters.dim} dimensions"
    assert db.pool is not None, "search pool used before start()"
    async with db.pool.acquire() as conn:
        return await conn.fetch(
            _NEAREST[filters.dim],
            filters.org_id, ef_search, filters.model, list(filters.knowledge_types),
            list(filters.source_thing_types) or None, filters.source_thing_id, list(filters.labels) or None, vector, k)


async def exact(conn: asyncpg.Connection, filters: Filters, vector: Sequence[float], k: int) -> list[Record]:
    """Every distance of the org's rows (the bare column matches no index); ties broken by id."""
    where, params = filters.where()
    distance = f"i.embedding <=> ${len(params) + 1}::vector"
    return await conn.fetch(
        f"SELECT {_COLUMNS}, 1 - ({distance}) AS similarity FROM knowledge.items i WHERE {where} "
        f"ORDER BY {distance}, i.id LIMIT ${len(params) + 2}", *params, vector, k)


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
