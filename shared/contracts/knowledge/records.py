"""What the knowledge service's replies carry: items, labels, links, search hits and ingestion jobs.

Read models use the spec's field names in snake_case (`knowledgeType` -> `knowledge_type`,
`sourceThingId` -> `source_thing_id`); `metadata` keeps the caller's keys. Vectors are left
out of replies unless asked for: 384 floats per hit would dwarf the rest of a search result.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.kernel.ontology import KnowledgeRole, KnowledgeType


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
