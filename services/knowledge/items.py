"""Knowledge items and thingKnowledge links: add (embedding outside the transaction), read,
soft delete and restore, link and unlink.

An added `document` is chunked and its chunks embedded; a `chunk` or `vector_only` item is
embedded as one text, or brings its own vector and model (clients that embed themselves).
A vector of the service's model must have the model's dimension; vectors of other models are
stored as given and only ever compared with vectors of the same model.
"""

import math
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from services.knowledge import events, graph, labels, pipeline, repository as repo, state
from services.knowledge.chunking import text_hash
from services.knowledge.models import to_item, to_link
from shared.contracts.knowledge import (
    ItemAdd,
    ItemQuery,
    Items,
    KnowledgeItem,
    KnowledgeNotFound,
    LinkCreate,
    LinkedItem,
    LinkTarget,
    ModelMismatch,
    Removed,
    ThingKnowledge,
    ThingLink,
)
from shared.kernel.errors import InvalidRequest
from shared.kernel.ids import uuid7
from shared.kernel.ontology import KnowledgeType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

MAX_SYNC_CHUNKS = 16
"""A document sent directly is embedded within the request (about 0.2 s per 800-token chunk on
one CPU core with the local model); longer texts belong to a thing and go through ingestion."""


def _check_vector(vector: Sequence[float], model: str, service_model: str, service_dim: int) -> None:
    if model == service_model and len(vector) != service_dim:
        raise ModelMismatch(f"{model} vectors have {service_dim} dimensions, not {len(vector)}",
                            {"embedding_model": model, "expected": service_dim, "got": len(vector)})
    if not math.isfinite(norm := math.sqrt(sum(x * x for x in vector))) or norm == 0:
        raise InvalidRequest("an embedding must be finite and not all zeros (cosine is undefined)")


async def add(ctx: WorkContext, requests: Sequence[ItemAdd]) -> Items:
    require(ctx.auth, "knowledge", "create")
    knowledge = state.of(ctx.runtime)
    settings = ctx.runtime.settings
    embedder = knowledge.embedder
    for request in requests:
        labels.normalize_all(request.labels)  # refuse a bad label before any embedding work
        if request.embedding is not None:
            _check_vector(request.embedding, request.embedding_model or "", embedder.model, embedder.dim)
    sources = {}
    for thing_id in dict.fromkeys(r.source_thing_id for r in requests if r.source_thing_id):
        sources[thing_id] = (await graph.live_thing(ctx, thing_id)).type.value
    org_id = ctx.auth.org_id
    rows: list[dict[str, Any]] = []
    to_embed: list[tuple[dict[str, Any], str]] = []
    for request in requests:
        common = {
            "org_id": org_id, "source_thing_id": request.source_thing_id,
            "source_thing_type": sources.get(request.source_thing_id), "source_field": request.source_field,
            "labels": labels.normalize_all(request.labels), "metadata": request.metadata,
        }
        if request.knowledge_type == KnowledgeType.DOCUMENT:
            chunks = await pipeline.chunks_of(knowledge, settings, request.text or "")
            if len(chunks) > MAX_SYNC_CHUNKS:
                raise InvalidRequest(
                    f"this document makes {len(chunks)} chunks, more than {MAX_SYNC_CHUNKS} embedded within one request: "
                    "attach it to a thing and use knowledge.ingest", {"chunks": len(chunks)})
            rows += await pipeline.document_rows(knowledge, settings, text=request.text or "", vector_only=False,
                                                 chunks=chunks, **common)
            continue
        vector_only = request.knowledge_type == KnowledgeType.VECTOR_ONLY
        row = {
            **common, "id": uuid7(), "knowledge_type": request.knowledge_type.value,
            "text": None if vector_only else request.text,
            "text_hash": text_hash(request.text) if request.text is not None else None,
            "embedding": request.embedding, "embedding_model": request.embedding_model,
            "embedding_dim": len(request.embedding) if request.embedding is not None else None,
        }
        if request.chunk is not None:
            row |= {"chunk_index": request.chunk.index, "chunk_start": request.chunk.start,
                    "chunk_end": request.chunk.end, "token_count": request.chunk.token_count,
                    "chunk_overlap": request.chunk.overlap}
        if request.embedding is None:
            to_embed.append((row, request.text or ""))
        rows.append(row)
    if to_embed:
        vectors = await embedder.embed([text for _, text in to_embed])
        for (row, _), vector in zip(to_embed, vectors, strict=True):
            row |= {"embedding": vector, "embedding_model": embedder.model, "embedding_dim": len(vector)}
    async with ctx.transaction() as tx:
        names = list(dict.fromkeys(name for row in rows for name in row["labels"]))
        if names:
            await labels.ensure_rows(tx, names, for_use=True)
        inserted = await repo.insert_items(tx.session, rows)
        await repo.insert_links(tx.session, pipeline.chunk_links(rows))
        await events.items_added(tx, inserted)
    return Items(items=[to_item(row) for row in inserted])


async def _row(ctx: WorkContext, item_id: UUID, *, with_embedding: bool = False) -> Any:
    row = await repo.get_item(ctx.session, ctx.auth.org_id, item_id, with_embedding=with_embedding)
    if row is None:
        raise KnowledgeNotFound(f"no knowledge item {item_id} in this organization", {"id": str(item_id)})
    return row


async def get(ctx: WorkContext, item_id: UUID, include_embedding: bool) -> KnowledgeItem:
    require(ctx.auth, "knowledge", "read")
    row = await _row(ctx, item_id, with_embedding=include_embedding)
    return to_item(row, embedding=row.embedding if include_embedding else None)


async def query(ctx: WorkContext, q: ItemQuery) -> Items:
    require(ctx.auth, "knowledge", "list")
    rows = await repo.query_items(
        ctx.session, ctx.auth.org_id, knowledge_type=q.knowledge_type, source_thing_id=q.source_thing_id,
        labels=labels.normalize_all(q.labels), include_archived=q.include_archived,
        include_deleted=q.include_deleted, cursor=q.cursor, limit=q.limit,
    )
    return Items(items=[to_item(row) for row in rows], next_cursor=rows[-1].id if len(rows) == q.limit else None)


async def delete(ctx: WorkContext, item_id: UUID) -> KnowledgeItem:
    """Soft delete: the item leaves every search and listing; a document takes its chunks along."""
    require(ctx.auth, "knowledge", "delete")
    row = await _row(ctx, item_id)
    if row.knowledge_type == KnowledgeType.LABEL:
        raise InvalidRequest("labels are removed with knowledge.label.delete", {"id": str(item_id)})
    if row.deleted_at is None:
        row = await repo.set_item_state(ctx.session, ctx.auth.org_id, item_id, deleted_at=repo.NOW)
        if row.knowledge_type == KnowledgeType.DOCUMENT:
            await repo.set_chunks_deleted(ctx.session, ctx.auth.org_id, item_id, True)
        await events.items_deleted(ctx, [row])
    return to_item(row)


async def restore(ctx: WorkContext, item_id: UUID) -> KnowledgeItem:
    require(ctx.auth, "knowledge", "update")
    row = await _row(ctx, item_id)
    if row.deleted_at is not None:
        row = await repo.set_item_state(ctx.session, ctx.auth.org_id, item_id, deleted_at=None)
        if row.knowledge_type == KnowledgeType.DOCUMENT:
            await repo.set_chunks_deleted(ctx.session, ctx.auth.org_id, item_id, False)
        await events.item_restored(ctx, row)
    return to_item(row)


async def link(ctx: WorkContext, request: LinkCreate) -> ThingLink:
    """Link a live thing to a live item; the graph is asked before the transaction opens."""
    require(ctx.auth, "knowledge", "create")
    await graph.live_thing(ctx, request.thing_id)
    async with ctx.transaction() as tx:
        item = await _row(tx, request.knowledge_id)
        if item.deleted_at is not None:
            raise KnowledgeNotFound(f"knowledge item {item.id} is deleted", {"id": str(item.id)})
        (row,) = await repo.insert_links(tx.session, [{
            "id": uuid7(), "org_id": tx.auth.org_id, "thing_id": request.thing_id, "knowledge_id": item.id,
            "role": request.role.value, "metadata": request.metadata,
        }])
        await events.thing_links_changed(tx, request.thing_id, "linked", [item.id], request.role.value)
    return to_link(row)


async def unlink(ctx: WorkContext, request: LinkTarget) -> Removed:
    require(ctx.auth, "knowledge", "delete")
    removed = await repo.delete_links(ctx.session, ctx.auth.org_id, request.thing_id, [request.knowledge_id],
                                      request.role.value)
    if removed:
        await events.thing_links_changed(ctx, request.thing_id, "unlinked", [request.knowledge_id], request.role.value)
    return Removed(removed=removed)


async def of_thing(ctx: WorkContext, thing_id: UUID, role: str | None, cursor: UUID | None, limit: int) -> ThingKnowledge:
    require(ctx.auth, "knowledge", "read")
    rows = await repo.links_of_thing(ctx.session, ctx.auth.org_id, thing_id, role=role, cursor=cursor, limit=limit)
    return ThingKnowledge(
        thing_id=thing_id, knowledge=[LinkedItem(link=to_link(link_row), item=to_item(item)) for link_row, item in rows],
        next_cursor=rows[-1][0].id if len(rows) == limit else None,
    )
