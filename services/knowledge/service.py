"""The knowledge requests that are not about labels, items or search: embedding texts, queueing a
thing's ingestion and following it, and garbage collection on demand.

Labels, items and search have modules of their own (labels.py, items.py, search.py), ingestion
itself is ingest.py and its background side (the trigger, the workers) jobs.py. As everywhere in
the service layer: SQL only through the repositories, the graph only through the context's `call`.
"""

from collections.abc import Sequence

from services.knowledge import gc, graph, repository_jobs as jobs_repo, state
from services.knowledge.models import to_job
from shared.contracts.knowledge import Embeddings, GcReport, IngestJob, IngestRequest, IngestStatus, IngestStatusQuery
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


async def embed(ctx: WorkContext, texts: Sequence[str]) -> Embeddings:
    """The service's embeddings of `texts`, for clients that search with vectors of their own."""
    require(ctx.auth, "knowledge", "read")
    embedder = state.of(ctx.runtime).embedder
    return Embeddings(embedding_model=embedder.model, embedding_dim=embedder.dim, vectors=await embedder.embed(texts))


async def request_ingest(ctx: WorkContext, p: IngestRequest) -> IngestJob:
    """Queue the thing for ingestion now (no debounce); progress through `knowledge.ingest.status`.
    `vector_only` makes the thing vector-only from now on; `store_text` turns that back off.

    The graph is asked before the transaction opens, so no connection is held while it answers."""
    require(ctx.auth, "knowledge", "create")
    await graph.live_thing(ctx, p.thing_id)
    async with ctx.transaction() as tx:
        (job,) = await jobs_repo.enqueue(tx.session, [{
            "org_id": tx.auth.org_id, "thing_id": p.thing_id, "action": "ingest", "fields": p.fields,
            "force": p.force, "vector_only": p.vector_only, "store_text": p.store_text, "trigger": "request",
            "actor_id": tx.auth.actor_id, "delay_ms": 0,
        }])
    state.of(ctx.runtime).workers.wake.set()
    return to_job(job)


async def ingest_status(ctx: WorkContext, p: IngestStatusQuery) -> IngestStatus:
    require(ctx.auth, "knowledge", "read")
    rows = await jobs_repo.jobs_for(ctx.session, ctx.auth.org_id, job_ids=p.job_ids, thing_id=p.thing_id, limit=p.limit)
    return IngestStatus(counts=await jobs_repo.counts(ctx.session, ctx.auth.org_id), jobs=[to_job(r) for r in rows])


async def collect_garbage(ctx: WorkContext, older_than_days: float | None) -> GcReport:
    """GC of the caller's org now, as the caller (its events name them), instead of at the next hourly run."""
    require(ctx.auth, "knowledge", "delete")
    return await gc.collect(ctx, older_than_days)
