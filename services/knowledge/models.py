"""The `knowledge` schema as SQLAlchemy Core tables (DDL lives in migrations/) and the read models.

Read models use the spec's field names in snake_case (`knowledgeType` -> `knowledge_type`,
`sourceThingId` -> `source_thing_id`); `metadata` keeps the caller's keys. Vectors are left
out of replies unless asked for: 384 floats per hit would dwarf the rest of a search result.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.kernel.ontology import KnowledgeRole, KnowledgeType

metadata = sa.MetaData(schema="knowledge")
_ts = sa.DateTime(timezone=True)

items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid),
    sa.Column("knowledge_type", sa.Text), sa.Column("name", sa.Text), sa.Column("text", sa.Text),
    sa.Column("text_hash", sa.Text), sa.Column("embedding", Vector()), sa.Column("embedding_model", sa.Text),
    sa.Column("embedding_dim", sa.Integer), sa.Column("source_thing_id", sa.Uuid),
    sa.Column("source_thing_type", sa.Text), sa.Column("source_field", sa.Text), sa.Column("document_id", sa.Uuid),
    sa.Column("chunk_index", sa.Integer), sa.Column("chunk_start", sa.Integer), sa.Column("chunk_end", sa.Integer),
    sa.Column("token_count", sa.Integer), sa.Column("chunk_overlap", sa.Integer),
    sa.Column("labels", ARRAY(sa.Text)), sa.Column("metadata", JSONB), sa.Column("source_hash", sa.Text),
    sa.Column("created_at", _ts), sa.Column("updated_at", _ts), sa.Column("archived_at", _ts),
    sa.Column("deprecated_at", _ts), sa.Column("deleted_at", _ts), sa.Column("ingested", sa.Boolean),
)

thing_knowledge = sa.Table(
    "thing_knowledge", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("thing_id", sa.Uuid),
    sa.Column("knowledge_id", sa.Uuid), sa.Column("role", sa.Text), sa.Column("metadata", JSONB),
    sa.Column("created_at", _ts),
)

label_aliases = sa.Table(
    "label_aliases", metadata,
    sa.Column("org_id", sa.Uuid), sa.Column("alias", sa.Text), sa.Column("label_id", sa.Uuid),
    sa.Column("created_at", _ts),
)

ingest_jobs = sa.Table(
    "ingest_jobs", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("thing_id", sa.Uuid),
    sa.Column("action", sa.Text), sa.Column("fields", ARRAY(sa.Text)), sa.Column("force", sa.Boolean),
    sa.Column("vector_only", sa.Boolean), sa.Column("trigger", sa.Text), sa.Column("actor_id", sa.Uuid),
    sa.Column("status", sa.Text), sa.Column("not_before", _ts), sa.Column("attempts", sa.Integer),
    sa.Column("chunks", sa.Integer), sa.Column("error", sa.Text), sa.Column("created_at", _ts),
    sa.Column("updated_at", _ts), sa.Column("finished_at", _ts),
    sa.Column("store_text", sa.Boolean),  # last: `RETURNING *` is read by position (migrations/v0004 added it)
)

ingest_state = sa.Table(
    "ingest_state", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("thing_id", sa.Uuid, primary_key=True),
    sa.Column("vector_only", sa.Boolean), sa.Column("thing_version", sa.Integer), sa.Column("updated_at", _ts),
)

ITEM_COLUMNS = [c for c in items.columns if c.name not in ("embedding", "ingested")]
"""What a reply reads: everything but the vector and `ingested` (ingestion's own bookkeeping: which
items it made from the thing's text fields, and so may archive and replace; migrations/v0004)."""


class ChunkInfo(BaseModel):
    """Where a chunk sits in its source text: character offsets, tokens, tokens shared with the previous chunk."""

    index: int
    start: int | None = None
    end: int | None = None
    token_count: int | None = None
    overlap: int | None = None


class KnowledgeItem(BaseModel):
    id: UUID
    knowledge_type: KnowledgeType
    name: str | None = None
    text: str | None = None
    text_hash: str | None = None
    embedding_model: str | None = None
    embedding_dim: int | None = None
    embedding: list[float] | None = None
    source_thing_id: UUID | None = None
    source_thing_type: str | None = None
    source_field: str | None = None
    document_id: UUID | None = None
    chunk: ChunkInfo | None = None
    labels: list[str] = []
    metadata: dict[str, Any] = {}
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    deprecated_at: datetime | None = None
    deleted_at: datetime | None = None


class Label(BaseModel):
    id: UUID
    name: str
    aliases: list[str] = []
    metadata: dict[str, Any] = {}
    deprecated: bool = False
    created_at: datetime


class ThingLink(BaseModel):
    """A thingKnowledge row: a thing and a knowledge item, in a role."""

    id: UUID
    thing_id: UUID
    knowledge_id: UUID
    role: KnowledgeRole
    metadata: dict[str, Any] = {}
    created_at: datetime


class SearchHit(BaseModel):
    """One result with what to cite (source thing, field, chunk position) and why it ranked."""

    item: KnowledgeItem
    score: float
    similarity: float | None = None
    ranks: dict[str, int] = {}


class IngestJob(BaseModel):
    id: UUID
    thing_id: UUID
    action: str
    status: str
    trigger: str
    fields: list[str] | None = None
    attempts: int
    chunks: int | None = None
    error: str | None = None
    not_before: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


def to_item(row: Any, *, embedding: Any = None) -> KnowledgeItem:
    """The reply form of an SQLAlchemy row (the vector only when asked for)."""
    item = record_dict(row._mapping)
    if embedding is not None:
        item["embedding"] = [float(x) for x in embedding]
    return KnowledgeItem.model_validate(item)


def record_dict(record: Any) -> dict[str, Any]:
    """An item as plain data from a row mapping (asyncpg record or SQLAlchemy `row._mapping`): search
    validates a whole result in one pass (pydantic-core), half the cost of a model per hit."""
    item = {name: record[name] for name in _RECORD_FIELDS}
    if record["chunk_index"] is not None:
        item["chunk"] = {"index": record["chunk_index"], "start": record["chunk_start"], "end": record["chunk_end"],
                         "token_count": record["token_count"], "overlap": record["chunk_overlap"]}
    item["labels"] = list(record["labels"] or [])
    item["metadata"] = record["metadata"] or {}
    return item


_RECORD_FIELDS = (
    "id", "knowledge_type", "name", "text", "text_hash", "embedding_model", "embedding_dim", "source_thing_id",
    "source_thing_type", "source_field", "document_id", "created_at", "updated_at", "archived_at", "deprecated_at",
    "deleted_at",
)


def to_link(row: Any) -> ThingLink:
    return ThingLink(
        id=row.id, thing_id=row.thing_id, knowledge_id=row.knowledge_id, role=row.role,
        metadata=row.metadata or {}, created_at=row.created_at,
    )


def to_job(row: Any) -> IngestJob:
    return IngestJob(
        id=row.id, thing_id=row.thing_id, action=row.action, status=row.status, trigger=row.trigger,
        fields=row.fields, attempts=row.attempts, chunks=row.chunks, error=row.error, not_before=row.not_before,
        created_at=row.created_at, updated_at=row.updated_at, finished_at=row.finished_at,
    )
