"""Ingestion of things through the bus: triggered by the graph's events (debounced), chunk windows
and overlaps as specified, unchanged text skipped, changed text replacing its chunks, deletes
archiving them, status visible, privacy kept."""

import asyncio
import itertools
import json

import asyncpg

from shared.contracts.graph import THING_DELETE, THING_UPDATE
from shared.contracts.knowledge import GC, INGEST, INGEST_STATUS, SEARCH
from shared.runtime.client import BusClient
from tests.knowledge.conftest import chunks_of, make_thing, settled
from tests.tenancy.conftest import Account

TOPICS = ["sourdough starters", "marathon training", "tide pools", "compiler design", "beekeeping", "jazz harmony"]


def article(paragraphs: int, seed: int = 0) -> str:
    """Varied English prose: sentences of different lengths in paragraphs."""
    out = []
    for p in range(paragraphs):
        topic = TOPICS[(p + seed) % len(TOPICS)]
        sentences = [
            f"Paragraph {p} looks at {topic} from a practical angle.",
            f"Most beginners underestimate how much patience {topic} demands, especially in the first weeks.",
            "Small, consistent habits matter more than rare bursts of effort.",
            f"Experts in {topic} keep notes, compare results and change one variable at a time.",
            "That discipline turns vague impressions into knowledge you can act on.",
            f"In short, {topic} rewards curiosity, care and a willingness to fail early.",
        ]
        out.append(" ".join(sentences))
    return "\n\n".join(out)


async def test_a_created_thing_is_chunked_as_specified(bus: BusClient, owner: Account) -> None:
    text = article(24)
    post = await make_thing(bus, owner.ctx, "blog_post", "Field notes", content=text)
    (job,) = await settled(bus, owner, post.id, 1)
    assert job.status == "done" and job.trigger == "event:entity_created"
    chunks = await chunks_of(bus, owner, post.id)
    assert job.chunks == len(chunks) >= 3
    for chunk in chunks:
        assert text[chunk.chunk.start:chunk.chunk.end] == chunk.text
        assert chunk.chunk.token_count <= 800 and chunk.source_field == "content"
        assert chunk.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert all(c.chunk.token_count >= 600 for c in chunks[:-1])
    assert chunks[0].chunk.overlap == 0
    for previous, chunk in itertools.pairwise(chunks):
        shared = text[chunk.chunk.start:previous.chunk.end]
        assert previous.text.endswith(shared) and chunk.text.startswith(shared)
        assert 100 <= chunk.chunk.overlap <= 250
        assert chunk.text[0].isupper()  # windows start at a sentence
    hits = await bus.request(SEARCH, {"query": "how do bees behave", "k": 3}, owner.ctx, timeout=30)
    assert hits.hits and all(h.item.source_thing_id == post.id for h in hits.hits)


async def test_unchanged_text_is_not_embedded_again(bus: BusClient, owner: Account) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Stable", content=article(3))
    await settled(bus, owner, post.id, 1)
    before = [c.id for c in await chunks_of(bus, owner, post.id)]
    await bus.request(THING_UPDATE, {"id": str(post.id), "name": "Renamed"}, owner.ctx)
    jobs = await settled(bus, owner, post.id, 2)
    assert jobs[0].status == "skipped"
    requested = await bus.request(INGEST, {"thing_id": str(post.id)}, owner.ctx)
    assert requested.trigger == "request"
    jobs = await settled(bus, owner, post.id, 3)
    assert jobs[0].status == "skipped"
    assert [c.id for c in await chunks_of(bus, owner, post.id)] == before


async def test_changed_text_replaces_its_chunks(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Evolving", content=article(3, seed=1))
    await settled(bus, owner, post.id, 1)
    old = await chunks_of(bus, owner, post.id)
    new_text = "Octopuses solve puzzles and open jars. " * 20
    await bus.request(THING_UPDATE, {"id": str(post.id), "properties": {"content": new_text}}, owner.ctx)
    jobs = await settled(bus, owner, post.id, 2)
    assert jobs[0].status == "done"
    live = await chunks_of(bus, owner, post.id)
    assert live and {c.id for c in live}.isdisjoint({c.id for c in old})
    assert all("Octopuses" in c.text for c in live)
    archived = [c for c in await chunks_of(bus, owner, post.id, include_archived=True) if c.archived_at]
    assert {c.id for c in archived} == {c.id for c in old}
    rows = await admin.fetch("SELECT envelope FROM knowledge.outbox WHERE subject LIKE $1", f"%.{owner.org_id}.entity_updated")
    actions = [json.loads(r["envelope"])["payload"]["metadata"] for r in rows]
    assert any(m.get("action") == "re_embedded" and m.get("archivedCount") == len(old) + 1 for m in actions)  # + the document


async def test_rapid_changes_are_debounced(bus: BusClient, owner: Account) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Busy", content="Version zero of a short note.")
    for version in range(1, 6):
        await bus.request(THING_UPDATE, {"id": str(post.id), "properties": {"content": f"Version {version} of a note."}},
                          owner.ctx)
    jobs = await settled(bus, owner, post.id, 1)
    await asyncio.sleep(1.0)
    jobs = await settled(bus, owner, post.id, len(jobs))
    assert len(jobs) <= 2  # six changes, at most the create's job and one more
    (chunk,) = await chunks_of(bus, owner, post.id)
    assert chunk.text == "Version 5 of a note."


async def test_deleting_the_thing_archives_its_knowledge(bus: BusClient, owner: Account) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Short-lived", description="A brief description.")
    await settled(bus, owner, post.id, 1)
    assert len(await chunks_of(bus, owner, post.id)) == 1
    await bus.request(THING_DELETE, {"id": str(post.id)}, owner.ctx)
    jobs = await settled(bus, owner, post.id, 2)
    assert jobs[0].status == "done"
    assert await chunks_of(bus, owner, post.id) == []


async def test_vector_only_ingestion_keeps_no_text(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    secret = "Confidential: the merger with Zephyrine closes in March. " * 10
    note = await make_thing(bus, owner.ctx, "email", "Private", content=secret, vectorOnly=True)
    await settled(bus, owner, note.id, 1)
    rows = await admin.fetch("SELECT knowledge_type, text, embedding IS NOT NULL AS embedded FROM knowledge.items "
                             "WHERE source_thing_id = $1", note.id)
    assert {r["knowledge_type"] for r in rows} == {"document", "vector_only"}
    assert all(r["text"] is None for r in rows) and any(r["embedded"] for r in rows)
    outbox = await admin.fetch("SELECT convert_from(envelope, 'UTF8') AS e FROM knowledge.outbox WHERE subject LIKE $1",
                               f"%.{owner.org_id}.%")
    assert outbox and not any("Zephyrine" in r["e"] for r in outbox)


async def test_status_counts_by_org(bus: BusClient, owner: Account, stranger: Account) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Counted", summary="One line.")
    await settled(bus, owner, post.id, 1)
    mine = await bus.request(INGEST_STATUS, {}, owner.ctx)
    assert mine.counts["done"] >= 1 and all(j.thing_id == post.id for j in mine.jobs)
    theirs = await bus.request(INGEST_STATUS, {"thing_id": str(post.id)}, stranger.ctx)
    assert theirs.jobs == []


async def test_gc_purges_old_archived_chunks_and_archives_orphans(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Collected", content="First version of the text.")
    await settled(bus, owner, post.id, 1)
    await bus.request(THING_UPDATE, {"id": str(post.id), "properties": {"content": "Second version."}}, owner.ctx)
    await settled(bus, owner, post.id, 2)
    archived = await admin.fetchval("SELECT count(*) FROM knowledge.items WHERE source_thing_id = $1 "
                                    "AND archived_at IS NOT NULL", post.id)
    assert archived == 2  # the first document and its chunk
    kept = await bus.request(GC, {}, owner.ctx)  # the default retention keeps them
    assert kept.purged_archived == 0
    # an orphan: a chunk whose document vanished underneath it (as after a crash of older code)
    (document,) = await admin.fetch("SELECT id FROM knowledge.items WHERE source_thing_id = $1 "
                                    "AND knowledge_type = 'document' AND archived_at IS NULL", post.id)
    await admin.execute("UPDATE knowledge.items SET archived_at = now() WHERE id = $1", document["id"])
    report = await bus.request(GC, {"older_than_days": 0}, owner.ctx)
    assert report.archived_orphans == 1 and report.purged_archived == 4  # two old, the document, the orphan
    assert await admin.fetchval("SELECT count(*) FROM knowledge.items WHERE source_thing_id = $1", post.id) == 0
