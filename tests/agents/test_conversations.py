"""Conversations (seed 002): created with agents taking part and an external thread id, participants added and
removed, messages with ELEVATE steps, tags and attachments in order, closing, and the history searched by meaning
(messages are embedded through the knowledge service with the real local embedder, which keeps their vectors and
not their text); another org sees none of it."""

import asyncio

import pytest

from shared.contracts.agents import (
    CONVERSATION_BY_EXTERNAL_ID,
    CONVERSATION_CREATE,
    CONVERSATION_GET,
    CONVERSATION_LIST,
    CONVERSATION_UPDATE,
    HISTORY_SEARCH,
    MESSAGE_ADD,
    MESSAGE_LIST,
    PARTICIPANT_ADD,
    PARTICIPANT_REMOVE,
    ConversationClosed,
    ConversationNotFound,
    ParticipantNotFound,
)
from shared.contracts.graph import THING_GET
from shared.contracts.knowledge import SEARCH
from shared.kernel.errors import Conflict, InvalidRequest
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import (  # noqa: F401 (fixtures)
    chat,
    make_agent,
    owner,
    stranger,
    wait_events,
)
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account, add_member, unique


async def test_conversation_participants_and_messages(
    bus: BusClient, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"text": "hi"})
    agent = await make_agent(bus, owner, model)
    helper = await make_agent(bus, owner, model, deploy=False)
    thread = unique("ext")
    created = await bus.request(CONVERSATION_CREATE, {"title": "Onboarding", "external_thread_id": thread,
                                                      "tags": ["vip"], "agents": [agent.slug]}, owner.ctx)
    assert created.external_thread_id == thread and created.tags == ["vip"] and created.status == "active"
    assert {(p.kind, p.member_id) for p in created.participants} == {("person", owner.person_id),
                                                                     ("agent", agent.id)}
    assert (await bus.request(THING_GET, {"id": str(created.id)}, owner.ctx)).thing.type == "conversation"
    with pytest.raises(Conflict):
        await bus.request(CONVERSATION_CREATE, {"external_thread_id": thread}, owner.ctx)
    assert (await bus.request(CONVERSATION_BY_EXTERNAL_ID, {"external_thread_id": thread}, owner.ctx)).id == created.id

    member = await add_member(bus, owner)
    target = {"conversation_id": str(created.id)}
    await bus.request(PARTICIPANT_ADD, {**target, "kind": "person", "member_id": str(member.person_id)}, owner.ctx)
    await bus.request(PARTICIPANT_ADD, {**target, "kind": "agent", "agent_slug": helper.slug}, owner.ctx)
    removed = await bus.request(PARTICIPANT_REMOVE, {**target, "kind": "agent", "agent_slug": agent.slug}, owner.ctx)
    assert removed.status == "removed" and removed.removed_at is not None
    with pytest.raises(ParticipantNotFound):
        await bus.request(PARTICIPANT_REMOVE, {**target, "kind": "agent", "agent_slug": agent.slug}, owner.ctx)
    active = {(p.kind, p.member_id) for p in (await bus.request(CONVERSATION_GET, {"id": str(created.id)}, owner.ctx))
              .participants if p.status == "active"}
    assert active == {("person", owner.person_id), ("person", member.person_id), ("agent", helper.id)}
    changes = await wait_events(bus, owner, ["communication_event"], 3, target_id=str(created.id))
    assert sorted(e.metadata["messageType"] for e in changes) == ["participant_added", "participant_added",
                                                                  "participant_removed"]

    first = await bus.request(MESSAGE_ADD, {**target, "content": "Welcome aboard", "step": "hook",
                                            "tags": ["greeting"], "attachments": [{"url": "https://example.test/a.pdf",
                                                                                  "name": "a.pdf"}]}, owner.ctx)
    second = await bus.request(MESSAGE_ADD, {**target, "content": "Rules of the house", "role": "system"}, member.ctx)
    assert (first.seq, second.seq) == (1, 2) and first.author_id == owner.person_id
    assert second.author_kind == "system" and second.author_id == member.person_id
    listed = (await bus.request(MESSAGE_LIST, target, owner.ctx)).messages
    assert [(m.content, m.step, m.tags) for m in listed] == [("Welcome aboard", "hook", ["greeting"]),
                                                             ("Rules of the house", None, [])]
    assert listed[0].attachments[0].url == "https://example.test/a.pdf"
    assert [m.seq for m in (await bus.request(MESSAGE_LIST, {**target, "after_seq": 1}, owner.ctx)).messages] == [2]
    with pytest.raises(InvalidRequest):
        await bus.request(MESSAGE_ADD, {**target, "content": "as the model", "role": "assistant"}, owner.ctx)

    for call in (CONVERSATION_GET, MESSAGE_LIST):  # another org's conversation does not exist for the stranger
        with pytest.raises(ConversationNotFound):
            await bus.request(call, {"id" if call is CONVERSATION_GET else "conversation_id": str(created.id)},
                              stranger.ctx)
    with pytest.raises(ConversationNotFound):
        await bus.request(MESSAGE_ADD, {**target, "content": "intrusion"}, stranger.ctx)
    assert not (await bus.request(CONVERSATION_LIST, {}, stranger.ctx)).conversations

    closed = await bus.request(CONVERSATION_UPDATE, {"id": str(created.id), "status": "closed"}, owner.ctx)
    assert closed.status == "closed"
    with pytest.raises(ConversationClosed):
        await bus.request(MESSAGE_ADD, {**target, "content": "too late"}, owner.ctx)
    with pytest.raises(ConversationClosed):
        await chat(bus, owner, agent.slug, "too late", thread_id=str(created.id))
    assert [c.id for c in (await bus.request(CONVERSATION_LIST, {"status": "closed"}, owner.ctx)).conversations] == [
        created.id]


async def test_history_is_searchable_by_meaning(
    bus: BusClient, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"text": "Noted: the invoice is paid by bank transfer."})
    agent = await make_agent(bus, owner, model)
    reply = await chat(bus, owner, agent.slug, "Our office dog is a beagle called Biscuit.")
    target = {"conversation_id": str(reply.conversation_id)}
    await bus.request(MESSAGE_ADD, {**target, "content": "The quarterly board meeting moved to Thursday."}, owner.ctx)

    async def top(query: str) -> str | None:
        deadline = asyncio.get_running_loop().time() + 120
        while True:  # messages are embedded after the reply, off its path
            hits = (await bus.request(HISTORY_SEARCH, {**target, "query": query, "k": 3}, owner.ctx, timeout=30)).hits
            if len(hits) >= 3 or asyncio.get_running_loop().time() > deadline:
                return hits[0].text if hits else None
            await asyncio.sleep(0.5)

    assert await top("What is the name of our pet?") == "Our office dog is a beagle called Biscuit."
    assert await top("How was the bill settled?") == "Noted: the invoice is paid by bank transfer."
    assert await top("When do the directors meet?") == "The quarterly board meeting moved to Thursday."
    with pytest.raises(ConversationNotFound):
        await bus.request(HISTORY_SEARCH, {**target, "query": "pet"}, stranger.ctx)
    # the knowledge service holds the messages' vectors, not their text: its search shows no conversation
    stored = await bus.request(SEARCH, {"query": "dog", "k": 10, "filters": {"source_thing_id": target[
        "conversation_id"], "knowledge_types": ["vector_only"]}}, owner.ctx, timeout=30)
    assert len(stored.hits) == 3 and all(h.item.text is None for h in stored.hits)
