"""Semantic and hybrid search, always within the caller's org and one embedding model.

Semantic: an org with fewer matching vectors than `knowledge_exact_below` is searched exactly
(cheap at that size, recall 1). A larger one goes through the shared HNSW index at
`knowledge_ef_search`; pgvector 0.6 filters after the index scan, so when other orgs' vectors
crowd the candidates and fewer than k rows survive, `ef_search` is widened (x4, up to 1000)
and, if that is still short, the org is searched exactly. So a search returns exactly k hits
whenever the org has k matching items.

Hybrid: reciprocal-rank fusion of the semantic candidates, the full-text candidates (Postgres
`tsvector`, English stemming, any query word) and the label candidates (`boost_labels`):
score = sum over signals of weight / (rrf_k + rank). Weights default to the settings.
"""

import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from services.knowledge import graph, labels, repository_search as sql, state
from services.knowledge.models import record_dict
from services.knowledge.settings import KnowledgeSettings
from shared.contracts.knowledge import HybridQuery, ModelMismatch, SearchQuery, SearchResult
from shared.kernel.envelope import Encoded
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_SIZE_TTL = 30.0
"""Seconds an org's size is cached (`KnowledgeState.org_sizes`). A stale answer only costs speed,
never results: the index path falls back to an exact scan when it comes up short."""


async def _query_vector(ctx: WorkContext, q: SearchQuery) -> tuple[list[float], str]:
    embedder = state.of(ctx.runtime).embedder
    if q.vector is None:
        return (await embedder.embed([q.query or ""]))[0], embedder.model
    model = q.embedding_model or embedder.model
    if model == embedder.model and len(q.vector) != embedder.dim:
        raise ModelMismatch(f"{model} vectors have {embedder.dim} dimensions, not {len(q.vector)}",
                            {"embedding_model": model, "expected": embedder.dim, "got": len(q.vector)})
    return list(q.vector), model


def _filters(ctx: WorkContext, q: SearchQuery, model: str, dim: int) -> sql.Filters:
    f = q.filters
    return sql.Filters(
        org_id=ctx.auth.org_id, model=model, dim=dim,
        knowledge_types=[t.value for t in f.knowledge_types] or ("chunk", "vector_only"),
        source_thing_types=f.source_thing_types, source_thing_id=f.source_thing_id,
        labels=labels.normalize_all(f.labels),
    )


async def _nearest(ctx: WorkContext, filters: sql.Filters, vector: list[float], k: int) -> tuple[list[Any], bool]:
    """The k nearest rows (fewer only if the org has fewer) and whether they came from an exact scan."""
    if await _large(ctx, filters):
        db, ef = state.of(ctx.runtime).search_db, _ef_search(ctx.runtime.settings, k)
        while True:
            rows = await sql.ann(db, filters, vector, k, ef)
            if len(rows) >= k:
                return rows, False
            if ef >= 1000:
                break
            ef = min(1000, ef * 4)
    async with _search(ctx) as conn:
        return await sql.exact(conn, filters, vector, k), True


async def _large(ctx: WorkContext, filters: sql.Filters) -> bool:
    """Whether the org has at least `knowledge_exact_below` vectors of an indexed dimension (cached)."""
    if filters.dim not in sql.INDEXED_DIMS:
        return False
    key, now = (filters.org_id, filters.model, filters.dim), time.monotonic()
    org_sizes = state.of(ctx.runtime).org_sizes
    cached = org_sizes.get(key)
    if cached is None or cached[1] < now:
        threshold = ctx.runtime.settings.knowledge_exact_below
        async with _search(ctx) as conn:
            cached = (await sql.count_up_to(conn, sql.Filters(*key), threshold) >= threshold, now + _SIZE_TTL)
        org_sizes[key] = cached
    return cached[0]


def _ef_search(settings: KnowledgeSettings, k: int) -> int:
    return max(settings.knowledge_ef_search, k)


def _search(ctx: WorkContext) -> Any:
    """A transaction on the search pool, in the caller's org."""
    return state.of(ctx.runtime).search_db.transaction(ctx.auth.org_id)


async def semantic(ctx: WorkContext, q: SearchQuery) -> Encoded[SearchResult]:
    require(ctx.auth, "knowledge", "read")
    vector, model = await _query_vector(ctx, q)
    rows, exact = await _nearest(ctx, _filters(ctx, q, model, len(vector)), vector, q.k)
    hits = [
        {"item": record_dict(row), "score": row["similarity"], "similarity": row["similarity"], "ranks": {"semantic": rank}}
        for rank, row in enumerate(rows, 1)
    ]
    return _result(await graph.visible_hits(ctx, hits), model, exact)


def fuse(rankings: dict[str, Sequence[UUID]], weights: dict[str, float], rrf_k: int) -> list[tuple[UUID, float, dict[str, int]]]:
    """Reciprocal-rank fusion: each signal adds weight / (rrf_k + rank) for the ids it ranked."""
    scores: dict[UUID, float] = {}
    ranks: dict[UUID, dict[str, int]] = {}
    for signal, ids in rankings.items():
        weight = weights.get(signal, 0.0)
        for rank, item_id in enumerate(ids, 1):
            scores[item_id] = scores.get(item_id, 0.0) + weight / (rrf_k + rank)
            ranks.setdefault(item_id, {})[signal] = rank
    ordered = sorted(scores, key=lambda i: (-scores[i], str(i)))
    return [(i, scores[i], ranks[i]) for i in ordered]


async def hybrid(ctx: WorkContext, q: HybridQuery) -> Encoded[SearchResult]:
    require(ctx.auth, "knowledge", "read")
    settings = ctx.runtime.settings
    vector, model = await _query_vector(ctx, q)
    filters = _filters(ctx, q, model, len(vector))
    depth = max(4 * q.k, 50)
    boost = labels.normalize_all(q.boost_labels)
    semantic_rows, exact = await _nearest(ctx, filters, vector, depth)
    async with _search(ctx) as conn:
        lexical_rows = await sql.lexical(conn, filters, q.query, depth)
        label_rows = await sql.by_labels(conn, filters, boost, depth) if boost else []
        rankings = {"semantic": [r["id"] for r in semantic_rows], "lexical": [r["id"] for r in lexical_rows],
                    "labels": [r["id"] for r in label_rows]}
        rows = {r["id"]: r for r in (*semantic_rows, *lexical_rows, *label_rows)}
        w = q.weights
        weights = {
            "semantic": settings.knowledge_weight_semantic if w.semantic is None else w.semantic,
            "lexical": settings.knowledge_weight_lexical if w.lexical is None else w.lexical,
            "labels": settings.knowledge_weight_labels if w.labels is None else w.labels,
        }
        fused = [entry for entry in fuse(rankings, weights, q.rrf_k or settings.knowledge_rrf_k) if entry[1] > 0][: q.k]
        similarity = await sql.similarities(conn, ctx.auth.org_id, [i for i, _, _ in fused], vector)
    hits = [{"item": record_dict(rows[i]), "score": score, "similarity": similarity.get(i), "ranks": ranks}
            for i, score, ranks in fused]
    return _result(await graph.visible_hits(ctx, hits), model, exact)


def _result(hits: list[dict[str, Any]], model: str, exact: bool) -> Encoded[SearchResult]:
    """The reply's JSON straight from the rows: the hot path skips a model round trip
    (tests/knowledge/test_search.py checks the shape against `SearchResult`)."""
    return Encoded.plain({"hits": hits, "embedding_model": model, "exact": exact})
