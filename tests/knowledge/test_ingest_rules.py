"""What ingestion may and may not do to a thing's knowledge: privacy that sticks through later graph
events, items added by hand that it never archives, and the `entity_archived` events it leaves."""

import asyncpg
import pytest

from shared.contracts.graph import THING_DELETE, THING_UPDATE
from shared.contracts.knowledge import INGEST, ITEM_ADD, ITEM_GET, ITEM_QUERY
from shared.kernel.errors import InvalidRequest
from shared.runtime.client import BusClient
from tests.knowledge.conftest import chunks_of, make_thing, outbox_events, settled
from tests.tenancy.conftest import Account

SECRET = "Confidential: Project Heliotrope ships to Quarrington Labs in May. " * 6
SECOND_SECRET = "Confidential: the Heliotrope budget doubled after the Quarrington audit. " * 6


async def texts_of(admin: asyncpg.Connection, thing_id: object) -> list[tuple[str, str | None, bool]]:
    """Every item of the thing, archived ones too: (type, text, archived)."""
    rows = await admin.fetch("SELECT knowledge_type, text, archived_at IS NOT NULL AS archived FROM knowledge.items "
                             "WHERE source_thing_id = $1 ORDER BY created_at", thing_id)
    return [(r["knowledge_type"], r["text"], r["archived"]) for r in rows]


async def live_embedded(admin: asyncpg.Connection, thing_id: object) -> list[object]:
    return [r["id"] for r in await admin.fetch(
        "SELECT id FROM knowledge.items WHERE source_thing_id = $1 AND embedding IS NOT NULL AND archived_at IS NULL "
        "ORDER BY id", thing_id)]


async def test_vector_only_sticks_through_later_graph_events(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    note = await make_thing(bus, owner.ctx, "email", "Private", content=SECRET)
    await settled(bus, owner, note.id, 1)
    await bus.request(INGEST, {"thing_id": str(note.id), "vector_only": True}, owner.ctx)
    jobs = await settled(bus, owner, note.id, 2)
    assert jobs[0].status == "done"
    stored = await texts_of(admin, note.id)
    assert {kind for kind, _, archived in stored if not archived} == {"document", "vector_only"}
    assert all(text is None for _, text, _ in stored)  # the chunks it replaced keep no text either
    (removed,) = [e["payload"]["metadata"] for e in await outbox_events(admin, owner.org_id, "entity_updated")
                  if e["payload"]["metadata"]["action"] == "text_removed"]
    assert removed == {"entityType": "knowledge", "action": "text_removed", "sourceThingId": str(note.id), "count": 2,
                       "reason": "vector_only"}  # the replaced document and its chunk
    embedded = await live_embedded(admin, note.id)

    await bus.request(THING_UPDATE, {"id": str(note.id), "name": "Private (renamed)"}, owner.ctx)
    jobs = await settled(bus, owner, note.id, 3)
    assert jobs[0].trigger == "event:entity_updated" and jobs[0].status == "skipped"
    assert await live_embedded(admin, note.id) == embedded  # unchanged text: not embedded again

    await bus.request(THING_UPDATE, {"id": str(note.id), "properties": {"content": SECOND_SECRET}}, owner.ctx)
    jobs = await settled(bus, owner, note.id, 4)
    assert jobs[0].trigger == "event:entity_updated" and jobs[0].status == "done"
    stored = await texts_of(admin, note.id)
    assert {kind for kind, _, archived in stored if not archived} == {"document", "vector_only"}
    assert all(text is None for _, text, _ in stored)
    published = [str(event) for kind in ("entity_created", "entity_updated", "entity_archived")
                 for event in await outbox_events(admin, owner.org_id, kind)]
    assert published and not any("Heliotrope" in event or "Quarrington" in event for event in published)


async def test_an_explicit_request_turns_vector_only_off(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    note = await make_thing(bus, owner.ctx, "email", "Private", content=SECRET)
    await settled(bus, owner, note.id, 1)
    await bus.request(INGEST, {"thing_id": str(note.id), "vector_only": True}, owner.ctx)
    await settled(bus, owner, note.id, 2)
    await bus.request(INGEST, {"thing_id": str(note.id)}, owner.ctx)  # no privacy asked: the thing keeps its mode
    assert (await settled(bus, owner, note.id, 3))[0].status == "skipped"
    await bus.request(INGEST, {"thing_id": str(note.id), "store_text": True}, owner.ctx)
    assert (await settled(bus, owner, note.id, 4))[0].status == "done"
    live = await chunks_of(bus, owner, note.id)
    assert live and all("Heliotrope" in chunk.text for chunk in live)
    await bus.request(THING_UPDATE, {"id": str(note.id), "name": "Not so private"}, owner.ctx)
    assert (await settled(bus, owner, note.id, 5))[0].status == "skipped"
    with pytest.raises(InvalidRequest):
        await bus.request(INGEST, {"thing_id": str(note.id), "vector_only": True, "store_text": True}, owner.ctx)


async def test_items_added_by_hand_outlive_ingestion(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Baking", content="Sourdough needs a lively starter.",
                            summary="A note on bread.")
    await settled(bus, owner, post.id, 1)
    added = []
    for extra in ({}, {"source_field": "notes"}, {"source_field": "content"}):
        result = await bus.request(ITEM_ADD, {"knowledge_type": "document", "text": "Hand-written: feed it twice a day.",
                                              "source_thing_id": str(post.id), **extra}, owner.ctx)
        added += result.items
    (chunk,) = (await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": "A hand-made chunk.",
                                             "source_thing_id": str(post.id), "source_field": "title"}, owner.ctx)).items
    added.append(chunk)

    await bus.request(THING_UPDATE, {"id": str(post.id), "properties": {"content": "Rye starters are slower."}}, owner.ctx)
    jobs = await settled(bus, owner, post.id, 2)
    assert jobs[0].status == "done"
    await bus.request(THING_UPDATE, {"id": str(post.id), "properties": {"summary": None}}, owner.ctx)
    jobs = await settled(bus, owner, post.id, 3)
    assert jobs[0].status == "done"

    for item in added:
        stored = await bus.request(ITEM_GET, {"id": str(item.id)}, owner.ctx)
        assert stored.archived_at is None, (item.source_field, item.knowledge_type)
    page = await bus.request(ITEM_QUERY, {"source_thing_id": str(post.id), "knowledge_type": "chunk"}, owner.ctx)
    assert sorted(c.text for c in page.items if c.metadata.get("thingName")) == ["Rye starters are slower."]

    (archived,) = await outbox_events(admin, owner.org_id, "entity_archived")
    assert archived["org_id"] == str(owner.org_id) and archived["payload"]["target_id"] == str(post.id)
    assert archived["payload"]["target_type"] == "knowledge"
    assert archived["payload"]["metadata"] == {
        "entityType": "knowledge", "action": "archived", "sourceThingId": str(post.id), "sourceField": "summary",
        "count": 2, "reason": "field summary is empty",  # the summary's document and its one chunk
    }


async def test_deleting_a_thing_archives_all_its_knowledge_with_one_event(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    note = await make_thing(bus, owner.ctx, "email", "Private", content=SECRET, vectorOnly=True)
    await settled(bus, owner, note.id, 1)
    await bus.request(ITEM_ADD, {"knowledge_type": "vector_only", "text": SECOND_SECRET, "source_thing_id": str(note.id)},
                      owner.ctx)
    live = [row for row in await texts_of(admin, note.id) if not row[2]]
    assert len(live) == 3  # the document, its vector, the one added by hand
    await bus.request(THING_DELETE, {"id": str(note.id)}, owner.ctx)
    jobs = await settled(bus, owner, note.id, 2)
    assert jobs[0].status == "done" and jobs[0].action == "purge"
    assert all(archived for _, _, archived in await texts_of(admin, note.id))
    (event,) = await outbox_events(admin, owner.org_id, "entity_archived")
    assert event["type"] == "entity_archived" and event["org_id"] == str(owner.org_id)
    assert event["payload"]["target_id"] == str(note.id) and event["payload"]["target_type"] == "knowledge"
    assert event["payload"]["metadata"] == {"entityType": "knowledge", "action": "archived",
                                            "sourceThingId": str(note.id), "count": 3, "reason": "thing deleted"}
    assert "Heliotrope" not in str(event) and "Quarrington" not in str(event)
