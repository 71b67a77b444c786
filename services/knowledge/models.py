"""The `knowledge` schema as SQLAlchemy Core tables (DDL lives in migrations/), and rows turned into
the read models of `shared.contracts.knowledge` (what replies carry).
"""

from typing import Any

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.contracts.knowledge import IngestJob, KnowledgeItem, ThingLink

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
