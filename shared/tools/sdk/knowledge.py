"""`one.knowledge`: labels, items, ingestion of things' text, and semantic or hybrid search.

    job = await one.knowledge.ingest(thing.id)
    await one.knowledge.wait_for([job.id])
    result = await one.knowledge.search("how do hives survive winter", k=5)
"""

import asyncio
import time
from typing import Any
from uuid import UUID

from shared.contracts.knowledge import (
    INGEST,
    INGEST_STATUS,
    ITEM_ADD,
    ITEM_DELETE,
    ITEM_GET,
    ITEM_QUERY,
    LABEL_ENSURE,
    LABEL_LIST,
    SEARCH,
    SEARCH_HYBRID,
    THING_LABEL,
    THING_LABELS,
    THING_UNLABEL,
    IngestJob,
    IngestStatus,
    Items,
    KnowledgeItem,
    Label,
    LabelPage,
    SearchResult,
    ThingLabels,
)
from shared.tools.sdk.namespace import Namespace

FINISHED = ("done", "skipped", "failed")
SEARCH_TIMEOUT = 30.0
"""A search may embed its query first: longer than a plain request."""


class Knowledge(Namespace):
    async def search(self, query: str, *, k: int | None = None, labels: list[str] | None = None, hybrid: bool = False,
                     filters: dict[str, Any] | None = None, timeout: float = SEARCH_TIMEOUT, **options: Any) -> SearchResult:
        """Semantic search (or `hybrid`: semantic, full-text and labels fused), hits with their citations."""
        filters = {**(filters or {}), **({"labels": labels} if labels else {})}
        return await self._call(SEARCH_HYBRID if hybrid else SEARCH, timeout=timeout, query=query, k=k,
                                filters=filters or None, **options)

    async def ingest(self, thing_id: UUID, *, fields: list[str] | None = None, force: bool | None = None,
                     vector_only: bool | None = None, store_text: bool | None = None) -> IngestJob:
        """Queue a thing's text for chunking and embedding; `wait_for` follows the job."""
        return await self._call(INGEST, thing_id=thing_id, fields=fields, force=force, vector_only=vector_only,
                                store_text=store_text)

    async def ingest_status(self, *, job_ids: list[UUID] | None = None, thing_id: UUID | None = None,
                            limit: int | None = None) -> IngestStatus:
        return await self._call(INGEST_STATUS, job_ids=job_ids, thing_id=thing_id, limit=limit)

    async def wait_for(self, job_ids: list[UUID], *, timeout: float = 300.0, poll: float = 0.5,
                       progress: Any = None) -> dict[UUID, IngestJob]:
        """The jobs once each has finished (done, skipped or failed), or as they are at `timeout`."""
        pending, latest = set(job_ids), {}
        deadline = time.monotonic() + timeout
        while True:
            for start in range(0, len(job_ids), 100):
                batch = [job for job in job_ids[start:start + 100] if job in pending]
                if batch:
                    for job in (await self.ingest_status(job_ids=batch, limit=100)).jobs:
                        latest[job.id] = job
                        if job.status in FINISHED:
                            pending.discard(job.id)
            if progress:
                progress(len(job_ids) - len(pending), len(job_ids))
            if not pending or time.monotonic() >= deadline:
                return latest
            await asyncio.sleep(poll)

    async def add(self, text: str, *, knowledge_type: str = "document", labels: list[str] | None = None,
                  source_thing_id: UUID | None = None, metadata: dict[str, Any] | None = None, **fields: Any) -> Items:
        """A knowledge item of its own (not a thing's text): a document is chunked and embedded."""
        return await self._call(ITEM_ADD, knowledge_type=knowledge_type, text=text, labels=labels,
                                source_thing_id=source_thing_id, metadata=metadata, **fields)

    async def get(self, id: UUID, *, include_embedding: bool | None = None) -> KnowledgeItem:
        return await self._call(ITEM_GET, id=id, include_embedding=include_embedding)

    async def items(self, *, labels: list[str] | None = None, source_thing_id: UUID | None = None,
                    cursor: UUID | None = None, limit: int | None = None, **filters: Any) -> Items:
        return await self._call(ITEM_QUERY, labels=labels, source_thing_id=source_thing_id, cursor=cursor, limit=limit,
                                **filters)

    async def delete(self, id: UUID) -> KnowledgeItem:
        return await self._call(ITEM_DELETE, id=id)

    async def ensure_label(self, name: str, *, aliases: list[str] | None = None,
                           metadata: dict[str, Any] | None = None) -> Label:
        return await self._call(LABEL_ENSURE, name=name, aliases=aliases, metadata=metadata)

    async def labels(self, *, prefix: str | None = None, cursor: str | None = None, limit: int | None = None) -> LabelPage:
        return await self._call(LABEL_LIST, prefix=prefix, cursor=cursor, limit=limit)

    async def label(self, thing_id: UUID, labels: list[str], *, metadata: dict[str, Any] | None = None) -> ThingLabels:
        """Apply labels to a thing (each created on first use)."""
        return await self._call(THING_LABEL, thing_id=thing_id, labels=labels, metadata=metadata)

    async def unlabel(self, thing_id: UUID, labels: list[str]) -> ThingLabels:
        return await self._call(THING_UNLABEL, thing_id=thing_id, labels=labels)

    async def thing_labels(self, thing_id: UUID) -> ThingLabels:
        return await self._call(THING_LABELS, thing_id=thing_id)
