"""The messages the knowledge service answers: payload and result models, registered once.

A vector may be sent instead of a query text (clients that embed themselves, benchmarks); it
must then name its model, since vectors of different models are never compared. A vector is
a list of numbers, or the same packed: base64 of its little-endian float32s (`pack_vector`),
about a quarter of its JSON, so four times as many vectors fit one NATS message.
"""

import base64
import binascii
import sys
from array import array
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, model_validator

from shared.contracts.knowledge.records import ChunkInfo, IngestJob, KnowledgeItem, Label, SearchHit, ThingLink
from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.ontology import KnowledgeRole, KnowledgeType

LabelName = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,3}$")]
TypeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,60}$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=400_000)]


def pack_vector(values: Sequence[float]) -> str:
    """A vector in its packed form: base64 of little-endian float32s (what `Vector` also accepts)."""
    floats = array("f", values)
    if sys.byteorder == "big":
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode()


def _unpack_vector(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("a vector given as a string must be base64 (of little-endian float32s)") from None
    if len(raw) % 4:
        raise ValueError(f"a packed vector has 4 bytes a dimension; {len(raw)} bytes is not a whole number of them")
    floats = array("f", raw)
    if sys.byteorder == "big":
        floats.byteswap()
    return floats.tolist()


Vector = Annotated[list[float], BeforeValidator(_unpack_vector, json_schema_input_type=list[float] | str),
                   Field(min_length=1, max_length=4096)]
"""A list of numbers, or `pack_vector`'s base64 of little-endian float32s."""
LabelNames = Annotated[list[LabelName], Field(max_length=50)]
Limit = Annotated[int, Field(ge=1, le=100)]
"""Pages stay far below NATS's 1 MB message limit even when every item carries an 800-token chunk."""


class LabelEnsure(Payload):
    name: LabelName
    aliases: LabelNames = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class LabelTarget(Payload):
    name: LabelName = Field(description="The label's name or one of its aliases.")


class LabelAlias(Payload):
    name: LabelName
    alias: LabelName


class LabelQuery(Payload):
    prefix: Annotated[str, StringConstraints(max_length=60)] | None = None
    include_deprecated: bool = False
    cursor: str | None = None
    limit: Limit = 100


class LabelPage(BaseModel):
    labels: list[Label]
    next_cursor: str | None = None


class LabelRemoval(BaseModel):
    """`delete` removes a label nobody uses; one still referenced is deprecated instead."""

    label: Label
    outcome: Literal["deleted", "deprecated"]
    references: int


class ThingLabelChange(Payload):
    thing_id: UUID
    labels: LabelNames = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThingTarget(Payload):
    thing_id: UUID


class ThingLabels(BaseModel):
    thing_id: UUID
    labels: list[Label]


class ThingsByLabels(Payload):
    labels: LabelNames = Field(min_length=1)
    match: Literal["all", "any"] = "all"
    cursor: UUID | None = None
    limit: Limit = 100


class ThingIds(BaseModel):
    thing_ids: list[UUID]
    next_cursor: UUID | None = None


class ItemAdd(Payload):
    """One knowledge item. A `document` is chunked and its chunks embedded; a `chunk` or
    `vector_only` item is embedded as given, or carries its own `embedding` + `embedding_model`."""

    knowledge_type: Literal[KnowledgeType.DOCUMENT, KnowledgeType.CHUNK, KnowledgeType.VECTOR_ONLY]
    text: Text | None = None
    embedding: Vector | None = None
    embedding_model: ModelName | None = None
    source_thing_id: UUID | None = None
    source_field: FieldName | None = None
    chunk: ChunkInfo | None = None
    labels: LabelNames = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "ItemAdd":
        if self.text is None and self.embedding is None:
            raise ValueError("an item needs text or an embedding")
        if (self.embedding is None) != (self.embedding_model is None):
            raise ValueError("embedding and embedding_model come together")
        if self.knowledge_type == KnowledgeType.DOCUMENT and self.text is None:
            raise ValueError("a document needs its text")
        return self


class ItemAddBatch(Payload):
    items: list[ItemAdd] = Field(min_length=1, max_length=1000)


class ItemTarget(Payload):
    id: UUID
    include_embedding: bool = False


class ItemQuery(Payload):
    knowledge_type: KnowledgeType | None = None
    source_thing_id: UUID | None = None
    labels: LabelNames = Field(default_factory=list, description="Items carrying all of these.")
    include_archived: bool = False
    include_deleted: bool = False
    cursor: UUID | None = None
    limit: Limit = 100


class Items(BaseModel):
    items: list[KnowledgeItem]
    next_cursor: UUID | None = None


class LinkCreate(Payload):
    thing_id: UUID
    knowledge_id: UUID
    role: KnowledgeRole
    metadata: dict[str, Any] = Field(default_factory=dict)


class LinkTarget(Payload):
    thing_id: UUID
    knowledge_id: UUID
    role: KnowledgeRole


class ThingKnowledgeQuery(Payload):
    thing_id: UUID
    role: KnowledgeRole | None = None
    cursor: UUID | None = None
    limit: Limit = 100


class LinkedItem(BaseModel):
    link: ThingLink
    item: KnowledgeItem


class ThingKnowledge(BaseModel):
    thing_id: UUID
    knowledge: list[LinkedItem]
    next_cursor: UUID | None = None


class Removed(BaseModel):
    removed: int


class IngestRequest(Payload):
    thing_id: UUID
    fields: list[FieldName] | None = Field(None, max_length=20, description="Unset = every text field of the inventory.")
    force: bool = Field(False, description="Re-embed even when the source is unchanged.")
    vector_only: bool = Field(False, description=(
        "Keep only vectors and hashes of this thing's text (privacy), from now on: later ingests, event-triggered "
        "ones included, stay vector-only. False (the default) keeps the thing's current mode."))
    store_text: bool = Field(False, description=(
        "Turn vector-only ingestion of this thing back off: its text is stored again from now on (a thing whose "
        "own `properties.vectorOnly` is true stays vector-only)."))

    @model_validator(mode="after")
    def _one_privacy_mode(self) -> "IngestRequest":
        if self.vector_only and self.store_text:
            raise ValueError("vector_only and store_text contradict each other: ask for one")
        return self


class IngestStatusQuery(Payload):
    job_ids: list[UUID] = Field(default_factory=list, max_length=1000)
    thing_id: UUID | None = None
    limit: Limit = 20


class IngestStatus(BaseModel):
    counts: dict[str, int] = Field(description="The org's jobs by status: queued, running, done, skipped, failed.")
    jobs: list[IngestJob]


class SearchFilters(Payload):
    knowledge_types: list[Literal[KnowledgeType.CHUNK, KnowledgeType.VECTOR_ONLY]] = Field(default_factory=list)
    source_thing_types: list[TypeName] = Field(default_factory=list, max_length=20)
    source_thing_id: UUID | None = None
    labels: LabelNames = Field(default_factory=list, description="Only items carrying all of these.")


class SearchQuery(Payload):
    query: Annotated[str, StringConstraints(min_length=1, max_length=8000)] | None = None
    vector: Vector | None = None
    embedding_model: ModelName | None = Field(None, description="The model of `vector`; default: the service's.")
    k: Annotated[int, Field(ge=1, le=100)] = 10
    filters: SearchFilters = Field(default_factory=SearchFilters)

    @model_validator(mode="after")
    def _query_or_vector(self) -> "SearchQuery":
        if self.query is None and self.vector is None:
            raise ValueError("search needs a query text or a vector")
        return self


class HybridWeights(Payload):
    semantic: float | None = Field(None, ge=0)
    lexical: float | None = Field(None, ge=0)
    labels: float | None = Field(None, ge=0)


class HybridQuery(SearchQuery):
    query: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    boost_labels: LabelNames = Field(default_factory=list, description="Items carrying more of these rank higher.")
    weights: HybridWeights = Field(default_factory=HybridWeights)
    rrf_k: Annotated[int, Field(ge=1, le=1000)] | None = None


class SearchResult(BaseModel):
    hits: list[SearchHit]
    embedding_model: str
    exact: bool = Field(description="True when the org was searched exhaustively instead of through the index.")


class EmbedRequest(Payload):
    texts: list[Text] = Field(min_length=1, max_length=256)


class Embeddings(BaseModel):
    embedding_model: str
    embedding_dim: int
    vectors: list[list[float]]


class GcRequest(Payload):
    older_than_days: float | None = Field(None, ge=0, le=36_500, description="Purge items archived longer ago than "
                                          "this (at most 100 years: a longer interval is no date Postgres can hold).")


class GcReport(BaseModel):
    archived_orphans: int
    purged_archived: int


def _message(type_: str, payload: type[Payload], result: type[BaseModel], permission: str) -> Any:
    subject = subjects.command("knowledge", type_.removeprefix("knowledge."))
    return register_message(type_, subject, payload, result, permission=permission)


LABEL_ENSURE = _message("knowledge.label.ensure", LabelEnsure, Label, permission="knowledge:read")
LABEL_GET = _message("knowledge.label.get", LabelTarget, Label, permission="knowledge:read")
LABEL_ALIAS = _message("knowledge.label.alias", LabelAlias, Label, permission="knowledge:update")
LABEL_LIST = _message("knowledge.label.list", LabelQuery, LabelPage, permission="knowledge:list")
LABEL_DEPRECATE = _message("knowledge.label.deprecate", LabelTarget, Label, permission="knowledge:update")
LABEL_DELETE = _message("knowledge.label.delete", LabelTarget, LabelRemoval, permission="knowledge:delete")
THING_LABEL = _message("knowledge.thing.label", ThingLabelChange, ThingLabels, permission="knowledge:create")
THING_UNLABEL = _message("knowledge.thing.unlabel", ThingLabelChange, ThingLabels, permission="knowledge:delete")
THING_LABELS = _message("knowledge.thing.labels", ThingTarget, ThingLabels, permission="knowledge:read")
THINGS_BY_LABELS = _message("knowledge.things.by_labels", ThingsByLabels, ThingIds, permission="knowledge:read")
ITEM_ADD = _message("knowledge.item.add", ItemAdd, Items, permission="knowledge:create")
ITEM_ADD_BATCH = _message("knowledge.item.add_batch", ItemAddBatch, Items, permission="knowledge:create")
ITEM_GET = _message("knowledge.item.get", ItemTarget, KnowledgeItem, permission="knowledge:read")
ITEM_QUERY = _message("knowledge.item.query", ItemQuery, Items, permission="knowledge:list")
ITEM_DELETE = _message("knowledge.item.delete", ItemTarget, KnowledgeItem, permission="knowledge:delete")
ITEM_RESTORE = _message("knowledge.item.restore", ItemTarget, KnowledgeItem, permission="knowledge:update")
LINK = _message("knowledge.link", LinkCreate, ThingLink, permission="knowledge:create")
UNLINK = _message("knowledge.unlink", LinkTarget, Removed, permission="knowledge:delete")
THING_KNOWLEDGE = _message(
    "knowledge.thing.knowledge", ThingKnowledgeQuery, ThingKnowledge, permission="knowledge:read"
)
INGEST = _message("knowledge.ingest", IngestRequest, IngestJob, permission="knowledge:create")
INGEST_STATUS = _message("knowledge.ingest.status", IngestStatusQuery, IngestStatus, permission="knowledge:read")
SEARCH = _message("knowledge.search", SearchQuery, SearchResult, permission="knowledge:read")
SEARCH_HYBRID = _message("knowledge.search.hybrid", HybridQuery, SearchResult, permission="knowledge:read")
EMBED = _message("knowledge.embed", EmbedRequest, Embeddings, permission="knowledge:read")
GC = _message("knowledge.gc", GcRequest, GcReport, permission="knowledge:delete")
