"""The knowledge service's subscribers, and the background work started with it.

Handlers that embed (adding items, searching with a query text, `embed`) are not transactional:
they embed first and open their transaction afterwards, so a connection is never held while
the model runs.
"""

import logging

from services.knowledge import gc, items, jobs, labels, search, state
from services.knowledge.models import IngestJob, KnowledgeItem, Label, ThingLink
from services.knowledge.schemas import (
    EMBED,
    GC,
    INGEST,
    INGEST_STATUS,
    ITEM_ADD,
    ITEM_ADD_BATCH,
    ITEM_DELETE,
    ITEM_GET,
    ITEM_QUERY,
    ITEM_RESTORE,
    LABEL_ALIAS,
    LABEL_DELETE,
    LABEL_DEPRECATE,
    LABEL_ENSURE,
    LABEL_GET,
    LABEL_LIST,
    LINK,
    SEARCH,
    SEARCH_HYBRID,
    THING_KNOWLEDGE,
    THING_LABEL,
    THING_LABELS,
    THING_UNLABEL,
    THINGS_BY_LABELS,
    UNLINK,
    Embeddings,
    EmbedRequest,
    GcReport,
    GcRequest,
    HybridQuery,
    IngestRequest,
    IngestStatus,
    IngestStatusQuery,
    ItemAdd,
    ItemAddBatch,
    ItemQuery,
    Items,
    ItemTarget,
    LabelAlias,
    LabelEnsure,
    LabelPage,
    LabelQuery,
    LabelRemoval,
    LabelTarget,
    LinkCreate,
    LinkTarget,
    Removed,
    SearchQuery,
    SearchResult,
    ThingIds,
    ThingKnowledge,
    ThingKnowledgeQuery,
    ThingLabelChange,
    ThingLabels,
    ThingsByLabels,
    ThingTarget,
)
from shared import __version__
from shared.kernel.envelope import Encoded
from shared.kernel.errors import Unavailable
from shared.runtime.handlers import RequestContext, ServiceRouter
from shared.kernel.rbac import require
from shared.runtime.service import ServiceDefinition, ServiceRuntime

log = logging.getLogger(__name__)
router = ServiceRouter("knowledge")


@router.handler(LABEL_ENSURE)
async def ensure_label(ctx: RequestContext, p: LabelEnsure) -> Label:
    return await labels.ensure(ctx, p.name, p.aliases, p.metadata)


@router.handler(LABEL_GET)
async def get_label(ctx: RequestContext, p: LabelTarget) -> Label:
    return await labels.get(ctx, p.name)


@router.handler(LABEL_ALIAS)
async def alias_label(ctx: RequestContext, p: LabelAlias) -> Label:
    return await labels.alias(ctx, p.name, p.alias)


@router.handler(LABEL_LIST)
async def list_labels(ctx: RequestContext, p: LabelQuery) -> LabelPage:
    return await labels.list_labels(ctx, p.prefix, p.include_deprecated, p.cursor, p.limit)


@router.handler(LABEL_DEPRECATE)
async def deprecate_label(ctx: RequestContext, p: LabelTarget) -> Label:
    return await labels.deprecate(ctx, p.name)


@router.handler(LABEL_DELETE)
async def delete_label(ctx: RequestContext, p: LabelTarget) -> LabelRemoval:
    return await labels.delete(ctx, p.name)


@router.handler(THING_LABEL)
async def label_thing(ctx: RequestContext, p: ThingLabelChange) -> ThingLabels:
    return await labels.label_thing(ctx, p.thing_id, p.labels, p.metadata)


@router.handler(THING_UNLABEL)
async def unlabel_thing(ctx: RequestContext, p: ThingLabelChange) -> ThingLabels:
    return await labels.unlabel_thing(ctx, p.thing_id, p.labels)


@router.handler(THING_LABELS)
async def thing_labels(ctx: RequestContext, p: ThingTarget) -> ThingLabels:
    return await labels.thing_labels(ctx, p.thing_id)


@router.handler(THINGS_BY_LABELS)
async def things_by_labels(ctx: RequestContext, p: ThingsByLabels) -> ThingIds:
    return await labels.things_by_labels(ctx, p.labels, p.match == "all", p.cursor, p.limit)


@router.handler(ITEM_ADD, transactional=False)
async def add_item(ctx: RequestContext, p: ItemAdd) -> Items:
    return await items.add(ctx, [p])


@router.handler(ITEM_ADD_BATCH, transactional=False)
async def add_items(ctx: RequestContext, p: ItemAddBatch) -> Items:
    return await items.add(ctx, p.items)


@router.handler(ITEM_GET)
async def get_item(ctx: RequestContext, p: ItemTarget) -> KnowledgeItem:
    return await items.get(ctx, p.id, p.include_embedding)


@router.handler(ITEM_QUERY)
async def query_items(ctx: RequestContext, p: ItemQuery) -> Items:
    return await items.query(ctx, p)


@router.handler(ITEM_DELETE)
async def delete_item(ctx: RequestContext, p: ItemTarget) -> KnowledgeItem:
    return await items.delete(ctx, p.id)


@router.handler(ITEM_RESTORE)
async def restore_item(ctx: RequestContext, p: ItemTarget) -> KnowledgeItem:
    return await items.restore(ctx, p.id)


@router.handler(LINK)
async def link(ctx: RequestContext, p: LinkCreate) -> ThingLink:
    return await items.link(ctx, p)


@router.handler(UNLINK)
async def unlink(ctx: RequestContext, p: LinkTarget) -> Removed:
    return Removed(removed=await items.unlink(ctx, p))


@router.handler(THING_KNOWLEDGE)
async def thing_knowledge(ctx: RequestContext, p: ThingKnowledgeQuery) -> ThingKnowledge:
    return await items.of_thing(ctx, p.thing_id, p.role, p.cursor, p.limit)


@router.handler(INGEST)
async def ingest_thing(ctx: RequestContext, p: IngestRequest) -> IngestJob:
    return await jobs.request_ingest(ctx, p)


@router.handler(INGEST_STATUS)
async def ingest_status(ctx: RequestContext, p: IngestStatusQuery) -> IngestStatus:
    return await jobs.status(ctx, p)


@router.handler(SEARCH, transactional=False)
async def semantic_search(ctx: RequestContext, p: SearchQuery) -> Encoded[SearchResult]:
    return await search.semantic(ctx, p)


@router.handler(SEARCH_HYBRID, transactional=False)
async def hybrid_search(ctx: RequestContext, p: HybridQuery) -> Encoded[SearchResult]:
    return await search.hybrid(ctx, p)


@router.handler(EMBED, transactional=False)
async def embed(ctx: RequestContext, p: EmbedRequest) -> Embeddings:
    require(ctx.auth, "knowledge", "read")
    embedder = state.of(ctx.runtime).embedder
    return Embeddings(embedding_model=embedder.model, embedding_dim=embedder.dim, vectors=await embedder.embed(p.texts))


@router.handler(GC, transactional=False)
async def collect_garbage(ctx: RequestContext, p: GcRequest) -> GcReport:
    require(ctx.auth, "knowledge", "delete")
    return await gc.collect(ctx.runtime, ctx.auth.org_id, ctx.auth.actor_id, p.older_than_days)


async def start_knowledge(runtime: ServiceRuntime) -> None:
    knowledge = state.create(runtime)
    await knowledge.search_db.start()
    try:
        await knowledge.embedder.warm()  # load the model now, not within the first request's timeout
    except Unavailable as error:
        log.warning("the embedding provider did not answer at start (%s); requests will retry it", error)
    knowledge.workers = jobs.Workers(runtime)
    knowledge.workers.start()
    if runtime.settings.knowledge_auto_ingest:
        knowledge.trigger = jobs.Trigger(runtime, knowledge.workers)
        await knowledge.trigger.start(runtime.broker.connection)


async def stop_knowledge(runtime: ServiceRuntime) -> None:
    knowledge = state.pop(runtime)
    if knowledge is not None:
        if knowledge.trigger is not None:
            await knowledge.trigger.stop()
        await knowledge.workers.stop()
        await knowledge.search_db.close()
        await knowledge.embedder.close()


definition = ServiceDefinition(
    name="knowledge", version=__version__, router=router, on_start=[start_knowledge], on_stop=[stop_knowledge]
)
