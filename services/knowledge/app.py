"""The knowledge service's subscribers: each one hands its payload to the service layer.

Handlers that embed (adding items, searching with a query text, `embed`) or ask the graph
(labelling or linking a thing, ingesting one) are not transactional: they do the slow part first
and open their transaction afterwards, so a connection is never held meanwhile.
"""

from services.knowledge import items, labels, replica, search, service
from services.knowledge.settings import KnowledgeSettings
from shared import __version__
from shared.contracts.knowledge import (
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
    IngestJob,
    IngestRequest,
    IngestStatus,
    IngestStatusQuery,
    ItemAdd,
    ItemAddBatch,
    ItemQuery,
    Items,
    ItemTarget,
    KnowledgeItem,
    Label,
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
    ThingLink,
    ThingsByLabels,
    ThingTarget,
)
from shared.kernel.envelope import Encoded
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("knowledge")


@router.handler(LABEL_ENSURE)
async def ensure_label(ctx: WorkContext, p: LabelEnsure) -> Label:
    return await labels.ensure(ctx, p.name, p.aliases, p.metadata)


@router.handler(LABEL_GET)
async def get_label(ctx: WorkContext, p: LabelTarget) -> Label:
    return await labels.get(ctx, p.name)


@router.handler(LABEL_ALIAS)
async def alias_label(ctx: WorkContext, p: LabelAlias) -> Label:
    return await labels.alias(ctx, p.name, p.alias)


@router.handler(LABEL_LIST)
async def list_labels(ctx: WorkContext, p: LabelQuery) -> LabelPage:
    return await labels.list_labels(ctx, p.prefix, p.include_deprecated, p.cursor, p.limit)


@router.handler(LABEL_DEPRECATE)
async def deprecate_label(ctx: WorkContext, p: LabelTarget) -> Label:
    return await labels.deprecate(ctx, p.name)


@router.handler(LABEL_DELETE)
async def delete_label(ctx: WorkContext, p: LabelTarget) -> LabelRemoval:
    return await labels.delete(ctx, p.name)


@router.handler(THING_LABEL, transactional=False)
async def label_thing(ctx: WorkContext, p: ThingLabelChange) -> ThingLabels:
    return await labels.label_thing(ctx, p.thing_id, p.labels, p.metadata)


@router.handler(THING_UNLABEL)
async def unlabel_thing(ctx: WorkContext, p: ThingLabelChange) -> ThingLabels:
    return await labels.unlabel_thing(ctx, p.thing_id, p.labels)


@router.handler(THING_LABELS)
async def thing_labels(ctx: WorkContext, p: ThingTarget) -> ThingLabels:
    return await labels.thing_labels(ctx, p.thing_id)


@router.handler(THINGS_BY_LABELS)
async def things_by_labels(ctx: WorkContext, p: ThingsByLabels) -> ThingIds:
    return await labels.things_by_labels(ctx, p.labels, p.match == "all", p.cursor, p.limit)


@router.handler(ITEM_ADD, transactional=False)
async def add_item(ctx: WorkContext, p: ItemAdd) -> Items:
    return await items.add(ctx, [p])


@router.handler(ITEM_ADD_BATCH, transactional=False)
async def add_items(ctx: WorkContext, p: ItemAddBatch) -> Items:
    return await items.add(ctx, p.items)


@router.handler(ITEM_GET)
async def get_item(ctx: WorkContext, p: ItemTarget) -> KnowledgeItem:
    return await items.get(ctx, p.id, p.include_embedding)


@router.handler(ITEM_QUERY)
async def query_items(ctx: WorkContext, p: ItemQuery) -> Items:
    return await items.query(ctx, p)


@router.handler(ITEM_DELETE)
async def delete_item(ctx: WorkContext, p: ItemTarget) -> KnowledgeItem:
    return await items.delete(ctx, p.id)


@router.handler(ITEM_RESTORE)
async def restore_item(ctx: WorkContext, p: ItemTarget) -> KnowledgeItem:
    return await items.restore(ctx, p.id)


@router.handler(LINK, transactional=False)
async def link(ctx: WorkContext, p: LinkCreate) -> ThingLink:
    return await items.link(ctx, p)


@router.handler(UNLINK)
async def unlink(ctx: WorkContext, p: LinkTarget) -> Removed:
    return await items.unlink(ctx, p)


@router.handler(THING_KNOWLEDGE)
async def thing_knowledge(ctx: WorkContext, p: ThingKnowledgeQuery) -> ThingKnowledge:
    return await items.of_thing(ctx, p.thing_id, p.role, p.cursor, p.limit)


@router.handler(INGEST, transactional=False)
async def ingest_thing(ctx: WorkContext, p: IngestRequest) -> IngestJob:
    return await service.request_ingest(ctx, p)


@router.handler(INGEST_STATUS)
async def ingest_status(ctx: WorkContext, p: IngestStatusQuery) -> IngestStatus:
    return await service.ingest_status(ctx, p)


@router.handler(SEARCH, transactional=False)
async def semantic_search(ctx: WorkContext, p: SearchQuery) -> Encoded[SearchResult]:
    return await search.semantic(ctx, p)


@router.handler(SEARCH_HYBRID, transactional=False)
async def hybrid_search(ctx: WorkContext, p: HybridQuery) -> Encoded[SearchResult]:
    return await search.hybrid(ctx, p)


@router.handler(EMBED, transactional=False)
async def embed(ctx: WorkContext, p: EmbedRequest) -> Embeddings:
    return await service.embed(ctx, p.texts)


@router.handler(GC, transactional=False)
async def collect_garbage(ctx: WorkContext, p: GcRequest) -> GcReport:
    return await service.collect_garbage(ctx, p.older_than_days)


definition = ServiceDefinition(
    name="knowledge", version=__version__, router=router, grants=("things:read",), settings=KnowledgeSettings,
    on_start=[replica.start], on_stop=[replica.stop],
)
"""`grants`: ingestion jobs read the things they embed, and nothing else."""
