"""Knowledge items over the bus: add and embed, documents chunked, vector_only privacy, lifecycle, links."""

import json

import asyncpg
import pytest

from shared.contracts.knowledge import (
    ITEM_ADD,
    ITEM_ADD_BATCH,
    ITEM_DELETE,
    ITEM_GET,
    ITEM_QUERY,
    ITEM_RESTORE,
    LINK,
    THING_KNOWLEDGE,
    UNLINK,
)
from shared.kernel.errors import InvalidRequest, NotFound
from shared.runtime.client import BusClient
from tests.knowledge.conftest import make_thing
from tests.tenancy.conftest import Account

EMBED_TIMEOUT = 60.0
"""Embedding several 800-token chunks on a busy 2-core machine takes seconds."""
SECRET = "Patient 4411 was diagnosed with a rare condition on Tuesday."


async def test_a_chunk_is_embedded_by_the_default_model(bus: BusClient, owner: Account) -> None:
    (item,) = (await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": "Deadlifts train the posterior chain."},
                                 owner.ctx)).items
    assert item.embedding_model == "sentence-transformers/all-MiniLM-L6-v2" and item.embedding_dim == 384
    stored = await bus.request(ITEM_GET, {"id": str(item.id), "include_embedding": True}, owner.ctx)
    assert len(stored.embedding) == 384 and abs(sum(x * x for x in stored.embedding) - 1) < 1e-3


async def test_a_document_is_chunked_and_its_chunks_linked_to_the_thing(bus: BusClient, owner: Account) -> None:
    thing = await make_thing(bus, owner.ctx)
    text = " ".join(f"Sentence number {i} talks about training plans and recovery." for i in range(200))
    result = await bus.request(ITEM_ADD, {"knowledge_type": "document", "text": text, "source_thing_id": str(thing.id),
                                          "source_field": "content", "labels": ["topic:training"]}, owner.ctx,
                             timeout=EMBED_TIMEOUT)
    document, *chunks = result.items
    assert document.knowledge_type == "document" and document.text == text and document.embedding_model is None
    assert len(chunks) >= 2 and all(c.knowledge_type == "chunk" and c.document_id == document.id for c in chunks)
    assert [c.chunk.index for c in chunks] == list(range(len(chunks)))
    assert all(text[c.chunk.start:c.chunk.end] == c.text and c.chunk.token_count <= 800 for c in chunks)
    assert all(c.source_thing_type == "blog_post" and c.labels == ["topic:training"] for c in chunks)
    linked = await bus.request(THING_KNOWLEDGE, {"thing_id": str(thing.id), "role": "chunk_of"}, owner.ctx)
    assert sorted(k.item.id for k in linked.knowledge) == sorted(c.id for c in chunks)


async def test_vector_only_keeps_no_text_anywhere(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    (item,) = (await bus.request(ITEM_ADD, {"knowledge_type": "vector_only", "text": SECRET}, owner.ctx)).items
    assert item.text is None and item.text_hash and item.embedding_dim == 384
    row = await admin.fetchrow("SELECT text, tsv::text AS tsv FROM knowledge.items WHERE id = $1", item.id)
    assert row["text"] is None and row["tsv"] == ""
    outbox = await admin.fetch("SELECT convert_from(envelope, 'UTF8') AS e FROM knowledge.outbox "
                               "WHERE convert_from(envelope, 'UTF8') LIKE $1", f"%{owner.org_id}%")
    assert outbox and all("Patient 4411" not in r["e"] and "diagnosed" not in r["e"] for r in outbox)  # ids may hold 4411
    with pytest.raises(asyncpg.CheckViolationError):
        await admin.execute("UPDATE knowledge.items SET text = 'leak' WHERE id = $1", item.id)


async def test_own_vectors_need_their_model_and_the_right_dimension(bus: BusClient, owner: Account) -> None:
    mine = {"knowledge_type": "chunk", "text": "x", "embedding": [0.1, 0.2, 0.3], "embedding_model": "acme/tiny-3"}
    (item,) = (await bus.request(ITEM_ADD, mine, owner.ctx)).items
    assert item.embedding_model == "acme/tiny-3" and item.embedding_dim == 3
    with pytest.raises(InvalidRequest) as error:
        await bus.request(ITEM_ADD, {**mine, "embedding_model": "sentence-transformers/all-MiniLM-L6-v2"}, owner.ctx)
    assert error.value.code == "embedding_model_mismatch"
    with pytest.raises(InvalidRequest):
        await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "embedding": [0.1]}, owner.ctx)
    with pytest.raises(InvalidRequest):
        await bus.request(ITEM_ADD, {**mine, "embedding": [0.0, 0.0, 0.0]}, owner.ctx)


async def test_a_bad_item_in_a_batch_writes_nothing(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    good = {"knowledge_type": "chunk", "text": "fine", "labels": ["topic:batch-atomic"]}
    bad = {"knowledge_type": "chunk", "text": "bad", "labels": ["not a label!"]}
    with pytest.raises(InvalidRequest):
        await bus.request(ITEM_ADD_BATCH, {"items": [good, bad]}, owner.ctx)
    assert await admin.fetchval("SELECT count(*) FROM knowledge.items WHERE org_id = $1", owner.org_id) == 0


async def test_delete_and_restore_a_document_with_its_chunks(bus: BusClient, owner: Account) -> None:
    text = " ".join(f"Line {i} of a long manual about espresso machines." for i in range(150))
    document, *chunks = (await bus.request(ITEM_ADD, {"knowledge_type": "document", "text": text}, owner.ctx,
                                           timeout=EMBED_TIMEOUT)).items
    await bus.request(ITEM_DELETE, {"id": str(document.id)}, owner.ctx)
    live = await bus.request(ITEM_QUERY, {}, owner.ctx)
    assert live.items == []
    every = await bus.request(ITEM_QUERY, {"include_deleted": True}, owner.ctx)
    assert len(every.items) == 1 + len(chunks)
    await bus.request(ITEM_RESTORE, {"id": str(document.id)}, owner.ctx)
    assert len((await bus.request(ITEM_QUERY, {"knowledge_type": "chunk"}, owner.ctx)).items) == len(chunks)


async def test_links_are_org_scoped(bus: BusClient, owner: Account, stranger: Account) -> None:
    thing = await make_thing(bus, owner.ctx)
    (item,) = (await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": "A summary."}, owner.ctx)).items
    link = await bus.request(LINK, {"thing_id": str(thing.id), "knowledge_id": str(item.id), "role": "summary",
                                    "metadata": {"confidence": 0.9}}, owner.ctx)
    assert link.role == "summary" and link.metadata == {"confidence": 0.9}
    with pytest.raises(NotFound):
        await bus.request(ITEM_GET, {"id": str(item.id)}, stranger.ctx)
    with pytest.raises(NotFound):
        await bus.request(LINK, {"thing_id": str(thing.id), "knowledge_id": str(item.id), "role": "summary"}, stranger.ctx)
    removed = await bus.request(UNLINK, {"thing_id": str(thing.id), "knowledge_id": str(item.id), "role": "summary"},
                                owner.ctx)
    assert removed.removed == 1


async def test_every_change_is_an_event(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    (item,) = (await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": "Evented."}, owner.ctx)).items
    await bus.request(ITEM_DELETE, {"id": str(item.id)}, owner.ctx)
    rows = await admin.fetch("SELECT subject, envelope FROM knowledge.outbox WHERE subject LIKE $1 ORDER BY created_at",
                             f"%.{owner.org_id}.%")
    actions = [(r["subject"].rsplit(".", 1)[1], json.loads(r["envelope"])["payload"]["metadata"]["action"]) for r in rows]
    assert actions == [("entity_created", "added"), ("entity_deleted", "deleted")]
