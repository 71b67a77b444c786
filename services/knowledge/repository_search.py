"""The SQL of search: k-NN through the HNSW index or exact, full-text candidates, label candidates.

The index is an expression index over `embedding::vector(384)` (cosine) on rows of that
dimension: `ann` orders by that same expression, so Postgres walks the graph; `exact` orders by
the bare column, which no index matches, so Postgres computes every distance of the org's rows
(found through `items_searchable`). pgvector 0.6 filters *after* the index scan: `ann` may
return fewer than k rows when other orgs' vectors crowd the candidates, and the caller widens
`ef_search` or falls back to `exact` (see search.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.knowledge.models import ITEM_COLUMNS
from services.knowledge.repository import vector_text

INDEXED_DIMS = frozenset({384})
"""Dimensions with an HNSW index (migrations/v0002); other dimensions are always searched exactly."""

_COLUMNS = ", ".join(f"i.{c.name}" for c in ITEM_COLUMNS)


@dataclass(frozen=True)
class Filters:
    org_id: UUID
    model: str
    dim: int
    knowledge_types: Sequence[str] = ("chunk", "vector_only")
    source_thing_types: Sequence[str] = ()
    source_thing_id: UUID | None = None
    labels: Sequence[str] = ()

    def where(self) -> tuple[str, dict[str, Any]]:
        """The conditions every candidate query shares, and their parameters (never spliced values)."""
        clauses = [
            "i.org_id = :org_id", "i.embedding_model = :model", "i.embedding_dim = :dim",
            "i.embedding IS NOT NULL", "i.deleted_at IS NULL", "i.archived_at IS NULL",
            "i.knowledge_type = ANY(CAST(:types AS text[]))",
        ]
        params: dict[str, Any] = {"org_id": self.org_id, "model": self.model, "dim": self.dim,
                                  "types": list(self.knowledge_types)}
        if self.source_thing_types:
            clauses.append("i.source_thing_type = ANY(CAST(:source_types AS text[]))")
            params["source_types"] = list(self.source_thing_types)
        if self.source_thing_id:
            clauses.append("i.source_thing_id = :source_thing_id")
            params["source_thing_id"] = self.source_thing_id
        if self.labels:
            clauses.append("i.labels @> CAST(:labels AS text[])")
            params["labels"] = list(self.labels)
        return " AND ".join(clauses), params


async def count_up_to(session: AsyncSession, filters: Filters, limit: int) -> int:
    """How many rows match, counting no further than `limit` (bounded cost for a large org)."""
    where, params = filters.where()
    statement = sa.text(f"SELECT count(*) FROM (SELECT 1 FROM knowledge.items i WHERE {where} LIMIT :cap) s")
    return int((await session.execute(statement, {**params, "cap": limit})).scalar_one())


async def ann(session: AsyncSession, filters: Filters, vector: Sequence[float], k: int, ef_search: int) -> list[Any]:
    where, params = filters.where()
    await session.execute(sa.text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef_search)})
    distance = f"i.embedding::vector({filters.dim}) <=> CAST(:q AS vector({filters.dim}))"
    statement = sa.text(
        f"SELECT {_COLUMNS}, 1 - ({distance}) AS similarity FROM knowledge.items i WHERE {where} "
        f"ORDER BY {distance} LIMIT :k"
    )
    return list((await session.execute(statement, {**params, "q": vector_text(vector), "k": k})).all())


async def exact(session: AsyncSession, filters: Filters, vector: Sequence[float], k: int) -> list[Any]:
    where, params = filters.where()
    distance = "i.embedding <=> CAST(:q AS vector)"
    statement = sa.text(
        f"SELECT {_COLUMNS}, 1 - ({distance}) AS similarity FROM knowledge.items i WHERE {where} "
        f"ORDER BY {distance}, i.id LIMIT :k"
    )
    return list((await session.execute(statement, {**params, "q": vector_text(vector), "k": k})).all())


async def lexical(session: AsyncSession, filters: Filters, query: str, limit: int) -> list[Any]:
    """Full-text candidates: any of the query's stemmed words (OR), ranked by cover density."""
    where, params = filters.where()
    statement = sa.text(f"""
        WITH q AS (
            SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(word), ' | '), '')) AS query
            FROM unnest(tsvector_to_array(to_tsvector('english', :text))) AS word
        )
        SELECT {_COLUMNS}, ts_rank_cd(i.tsv, q.query) AS rank
        FROM knowledge.items i, q
        WHERE {where} AND i.tsv @@ q.query
        ORDER BY rank DESC, i.id LIMIT :limit
    """)
    return list((await session.execute(statement, {**params, "text": query, "limit": limit})).all())


async def by_labels(session: AsyncSession, filters: Filters, boost: Sequence[str], limit: int) -> list[Any]:
    """Candidates carrying any of `boost`, those with more of them first."""
    where, params = filters.where()
    statement = sa.text(f"""
        SELECT {_COLUMNS},
               cardinality(ARRAY(SELECT unnest(i.labels) INTERSECT SELECT unnest(CAST(:boost AS text[])))) AS matched
        FROM knowledge.items i
        WHERE {where} AND i.labels && CAST(:boost AS text[])
        ORDER BY matched DESC, i.id LIMIT :limit
    """)
    return list((await session.execute(statement, {**params, "boost": list(boost), "limit": limit})).all())


async def similarities(session: AsyncSession, org_id: UUID, ids: Sequence[UUID], vector: Sequence[float]) -> dict[UUID, float]:
    statement = sa.text("""
        SELECT id, 1 - (embedding <=> CAST(:q AS vector)) AS similarity FROM knowledge.items
        WHERE org_id = :org_id AND id = ANY(CAST(:ids AS uuid[])) AND embedding_dim = :dim
    """)
    rows = await session.execute(statement, {"org_id": org_id, "ids": list(ids), "q": vector_text(vector), "dim": len(vector)})
    return {row.id: float(row.similarity) for row in rows}
