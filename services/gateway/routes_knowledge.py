"""Knowledge's REST routes: labels, a thing's labels and knowledge, items, ingestion and search.

Each route is one bus request; bodies and query strings are the contract's payload models
(`shared.contracts.knowledge`) less what the path names, replies its result models. A search is
a read with a body (filters, vectors), so it is a POST that changes nothing. A label's name may
hold a `/`, so it is the rest of its path. `knowledge.embed` has no route: it is the embedder's
raw compute, with nothing of the org in it, and the edge does not meter it.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus, _set
from services.gateway.shapes import derived
from shared.contracts.knowledge import (
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
)

LabelAliasBody = derived(LabelAlias, "LabelAliasBody", drop=("name",))
ThingLabelsBody = derived(ThingLabelChange, "ThingLabelsBody", drop=("thing_id",))
ThingUnlabelQuery = derived(ThingLabelChange, "ThingUnlabelQuery", drop=("thing_id", "metadata"))
ThingKnowledgeParams = derived(ThingKnowledgeQuery, "ThingKnowledgeParams", drop=("thing_id",))
LinkBody = derived(LinkCreate, "LinkBody", drop=("thing_id",))
UnlinkQuery = derived(LinkTarget, "UnlinkQuery", drop=("thing_id", "knowledge_id"))
ItemInclude = derived(ItemTarget, "ItemInclude", drop=("id",))
IngestBody = derived(IngestRequest, "IngestBody", drop=("thing_id",))


router = APIRouter(prefix="/v1")

# labels: a name (or alias) is the rest of the path


@router.post("/labels", responses=WRITE, tags=["labels"])
async def ensure_label(body: LabelEnsure, caller: Caller, bus: Bus) -> Label:
    return await bus.request(LABEL_ENSURE, body, caller)


@router.get("/labels", responses=READ, tags=["labels"])
async def list_labels(query: Annotated[LabelQuery, Query()], caller: Caller, bus: Bus) -> LabelPage:
    return await bus.request(LABEL_LIST, query, caller)


@router.post("/labels/{name:path}/aliases", responses=WRITE, tags=["labels"])
async def alias_label(name: str, body: LabelAliasBody, caller: Caller, bus: Bus) -> Label:  # type: ignore[valid-type]
    return await bus.request(LABEL_ALIAS, {"name": name, **_set(body)}, caller)


@router.post("/labels/{name:path}/deprecate", responses=WRITE, tags=["labels"])
async def deprecate_label(name: str, caller: Caller, bus: Bus) -> Label:
    return await bus.request(LABEL_DEPRECATE, {"name": name}, caller)


@router.get("/labels/{name:path}", responses=READ, tags=["labels"])
async def get_label(name: str, caller: Caller, bus: Bus) -> Label:
    return await bus.request(LABEL_GET, {"name": name}, caller)


@router.delete("/labels/{name:path}", responses=WRITE, tags=["labels"])
async def delete_label(name: str, caller: Caller, bus: Bus) -> LabelRemoval:
    return await bus.request(LABEL_DELETE, {"name": name}, caller)


# a thing's labels and knowledge


@router.post("/things/{id}/labels", responses=WRITE, tags=["labels"])
async def label_thing(id: UUID, body: ThingLabelsBody, caller: Caller, bus: Bus) -> ThingLabels:  # type: ignore[valid-type]
    return await bus.request(THING_LABEL, {"thing_id": id, **_set(body)}, caller)


@router.delete("/things/{id}/labels", responses=WRITE, tags=["labels"])
async def unlabel_thing(id: UUID, query: Annotated[ThingUnlabelQuery, Query()], caller: Caller, bus: Bus) -> ThingLabels:  # type: ignore[valid-type]
    return await bus.request(THING_UNLABEL, {"thing_id": id, **_set(query)}, caller)


@router.get("/things/{id}/labels", responses=READ, tags=["labels"])
async def thing_labels(id: UUID, caller: Caller, bus: Bus) -> ThingLabels:
    return await bus.request(THING_LABELS, {"thing_id": id}, caller)


@router.post("/things/{id}/knowledge", status_code=201, responses=WRITE, tags=["knowledge"])
async def link_knowledge(id: UUID, body: LinkBody, caller: Caller, bus: Bus) -> ThingLink:  # type: ignore[valid-type]
    return await bus.request(LINK, {"thing_id": id, **_set(body)}, caller)


@router.delete("/things/{id}/knowledge/{knowledge_id}", responses=WRITE, tags=["knowledge"])
async def unlink_knowledge(id: UUID, knowledge_id: UUID, query: Annotated[UnlinkQuery, Query()], caller: Caller,  # type: ignore[valid-type]
                           bus: Bus) -> Removed:
    return await bus.request(UNLINK, {"thing_id": id, "knowledge_id": knowledge_id, **_set(query)}, caller)


@router.get("/things/{id}/knowledge", responses=READ, tags=["knowledge"])
async def thing_knowledge(id: UUID, query: Annotated[ThingKnowledgeParams, Query()], caller: Caller,  # type: ignore[valid-type]
                          bus: Bus) -> ThingKnowledge:
    return await bus.request(THING_KNOWLEDGE, {"thing_id": id, **_set(query)}, caller)


@router.post("/things/{id}/ingest", status_code=202, responses=WRITE, tags=["knowledge"])
async def ingest_thing(id: UUID, body: IngestBody, caller: Caller, bus: Bus) -> IngestJob:  # type: ignore[valid-type]
    return await bus.request(INGEST, {"thing_id": id, **_set(body)}, caller)


@router.get("/knowledge/ingest", responses=READ, tags=["knowledge"])
async def ingest_status(query: Annotated[IngestStatusQuery, Query()], caller: Caller, bus: Bus) -> IngestStatus:
    return await bus.request(INGEST_STATUS, query, caller)


@router.get("/knowledge/things", responses=READ, tags=["labels"])
async def things_by_labels(query: Annotated[ThingsByLabels, Query()], caller: Caller, bus: Bus) -> ThingIds:
    return await bus.request(THINGS_BY_LABELS, query, caller)


# items


@router.post("/knowledge/items", status_code=201, responses=WRITE, tags=["knowledge"])
async def add_item(body: ItemAdd, caller: Caller, bus: Bus) -> Items:
    return await bus.request(ITEM_ADD, body, caller)


@router.post("/knowledge/items/batch", status_code=201, responses=WRITE, tags=["knowledge"])
async def add_items(body: ItemAddBatch, caller: Caller, bus: Bus) -> Items:
    return await bus.request(ITEM_ADD_BATCH, body, caller)


@router.get("/knowledge/items", responses=READ, tags=["knowledge"])
async def query_items(query: Annotated[ItemQuery, Query()], caller: Caller, bus: Bus) -> Items:
    return await bus.request(ITEM_QUERY, query, caller)


@router.get("/knowledge/items/{id}", responses=READ, tags=["knowledge"])
async def get_item(id: UUID, query: Annotated[ItemInclude, Query()], caller: Caller, bus: Bus) -> KnowledgeItem:  # type: ignore[valid-type]
    return await bus.request(ITEM_GET, {"id": id, **_set(query)}, caller)


@router.delete("/knowledge/items/{id}", responses=WRITE, tags=["knowledge"])
async def delete_item(id: UUID, caller: Caller, bus: Bus) -> KnowledgeItem:
    return await bus.request(ITEM_DELETE, {"id": id}, caller)


@router.post("/knowledge/items/{id}/restore", responses=WRITE, tags=["knowledge"])
async def restore_item(id: UUID, caller: Caller, bus: Bus) -> KnowledgeItem:
    return await bus.request(ITEM_RESTORE, {"id": id}, caller)


# search: reads with a body


@router.post("/knowledge/search", responses=READ, tags=["search"])
async def search(body: SearchQuery, caller: Caller, bus: Bus) -> SearchResult:
    return await bus.request(SEARCH, body, caller)


@router.post("/knowledge/search/hybrid", responses=READ, tags=["search"])
async def search_hybrid(body: HybridQuery, caller: Caller, bus: Bus) -> SearchResult:
    return await bus.request(SEARCH_HYBRID, body, caller)


@router.post("/knowledge/gc", responses=WRITE, tags=["knowledge"])
async def collect_garbage(body: GcRequest, caller: Caller, bus: Bus) -> GcReport:
    return await bus.request(GC, body, caller)
