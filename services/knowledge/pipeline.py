"""Text in, rows out: chunk a text, embed the chunks, and lay out the document and chunk rows.

Shared by `knowledge.item.add` (a document sent directly) and thing ingestion. Chunking runs
in a thread (the tokenizer is native code) and embedding in the embedder's own worker, so the
event loop keeps answering while a long text is processed. Nothing here touches the database.
"""

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from services.knowledge.chunking import Chunk, chunk_text, source_hash, text_hash
from services.knowledge.settings import KnowledgeSettings
from services.knowledge.state import KnowledgeState
from shared.kernel.ids import uuid7
from shared.kernel.ontology import KnowledgeType


def fingerprint(state: KnowledgeState, settings: KnowledgeSettings, text: str, *, vector_only: bool) -> str:
    """What decides whether a text must be re-embedded: the text, the model and tokenizer, the window, privacy."""
    digest = source_hash(text, model=f"{state.embedder.model}|{state.tokenizer.name}", window=settings.knowledge_chunk_tokens,
                         overlap=settings.knowledge_chunk_overlap)
    return f"{digest}:{'v' if vector_only else 't'}"


async def chunks_of(state: KnowledgeState, settings: KnowledgeSettings, text: str) -> list[Chunk]:
    return await asyncio.to_thread(
        chunk_text, text, state.tokenizer,
        window=settings.knowledge_chunk_tokens, overlap=settings.knowledge_chunk_overlap,
    )


async def document_rows(
    state: KnowledgeState, settings: KnowledgeSettings, *, org_id: UUID, text: str, vector_only: bool,
    source_thing_id: UUID | None, source_thing_type: str | None, source_field: str | None,
    labels: Sequence[str], metadata: dict[str, Any], chunks: Sequence[Chunk] | None = None, ingested: bool = False,
) -> list[dict[str, Any]]:
    """The document row followed by its chunk rows, embedded. `vector_only` keeps no text at all:
    neither on the chunks nor on the document (hashes and offsets only). `ingested` marks rows made
    by thing ingestion, the only ones it later archives or replaces."""
    chunks = chunks if chunks is not None else await chunks_of(state, settings, text)
    vectors = await state.embedder.embed([chunk.text for chunk in chunks]) if chunks else []
    document_id = uuid7()
    common = {
        "org_id": org_id, "source_thing_id": source_thing_id, "source_thing_type": source_thing_type,
        "source_field": source_field, "labels": list(labels), "ingested": ingested,
    }
    document = {
        **common, "id": document_id, "knowledge_type": KnowledgeType.DOCUMENT.value,
        "text": None if vector_only else text, "text_hash": text_hash(text),
        "source_hash": fingerprint(state, settings, text, vector_only=vector_only),
        "metadata": {**metadata, "chunks": len(chunks), "vectorOnly": vector_only},
    }
    chunk_type = KnowledgeType.VECTOR_ONLY if vector_only else KnowledgeType.CHUNK
    rows = [document]
    for chunk, vector in zip(chunks, vectors, strict=True):
        rows.append({
            **common, "id": uuid7(), "knowledge_type": chunk_type.value, "document_id": document_id,
            "text": None if vector_only else chunk.text, "text_hash": text_hash(chunk.text),
            "embedding": vector, "embedding_model": state.embedder.model, "embedding_dim": len(vector),
            "chunk_index": chunk.index, "chunk_start": chunk.start, "chunk_end": chunk.end,
            "token_count": chunk.token_count, "chunk_overlap": chunk.overlap, "metadata": dict(metadata),
        })
    return rows


def chunk_links(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`chunk_of` links from each row's source thing to its embedded rows (chunks and vector-only items)."""
    return [
        {"id": uuid7(), "org_id": row["org_id"], "thing_id": row["source_thing_id"], "knowledge_id": row["id"],
         "role": "chunk_of", "metadata": {"field": row.get("source_field"), "index": row.get("chunk_index")}}
        for row in rows
        if row.get("source_thing_id") is not None and row["knowledge_type"] != KnowledgeType.DOCUMENT.value
    ]
