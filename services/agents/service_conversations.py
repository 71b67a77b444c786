"""Conversations: participants (people and agents), messages with ELEVATE steps, tags and attachments.

A conversation is a `conversation` thing in the graph (same id), so the ontology can connect it. Its
messages are embedded through the knowledge service (items whose source thing is the conversation),
after they are committed and off the request's path, so a conversation's history is searchable by
meaning (`agents.history.search`) without a slow embedder holding up a reply. They are `vector_only`
items: the knowledge service keeps their vectors, not their text, so the org's knowledge search (which
customers may use) and runs' retrieval never show one person's conversation to another; a history
search reads the messages' text here, where only those who may read conversations do.
"""

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.agents import repository_conversations as repo
from services.agents.rows import ConversationRow
from services.agents.service_agents import load_agent
from services.agents.state import of as state_of
from services.agents.tools_access import agents_identity
from shared.contracts.agents import (
    AgentRef,
    Conversation,
    ConversationClosed,
    ConversationCreate,
    ConversationNotFound,
    ConversationPage,
    ConversationQuery,
    ConversationUpdate,
    HistoryHit,
    HistoryHits,
    HistorySearch,
    Message,
    MessageAdd,
    MessagePage,
    MessageQuery,
    Participant,
    ParticipantChange,
    ParticipantNotFound,
)
from shared.contracts.graph import THING_CREATE
from shared.contracts.knowledge import ITEM_ADD_BATCH, SEARCH
from shared.kernel.errors import Conflict
from shared.kernel.ontology import EventType
from shared.kernel.rbac import check, require
from shared.runtime.context import WorkContext

log = logging.getLogger(__name__)



async def to_conversations(ctx: WorkContext, rows: list[ConversationRow]) -> list[Conversation]:
    people = await repo.participants_of(ctx.session, ctx.auth.org_id, [row.id for row in rows])
    return [
        Conversation.model_validate({
            **{f: getattr(row, f) for f in ("id", "title", "status", "external_thread_id", "tags", "last_message_at",
                                            "created_at", "updated_at", "created_by")},
            "participants": [p for p in people if p.conversation_id == row.id],
        })
        for row in rows
    ]


async def load_conversation(ctx: WorkContext, conversation_id: UUID) -> ConversationRow:
    row = await repo.get_conversation(ctx.session, ctx.auth.org_id, conversation_id)
    if row is None:
        raise ConversationNotFound(f"no conversation {conversation_id} in this organization")
    return row


async def open_conversation(ctx: WorkContext, payload: ConversationCreate, agent_ids: list[UUID]) -> ConversationRow:
    """The conversation's thing first (a graph call, no transaction held), then its row, its creator and agents.

    The thing is the service's bookkeeping, created as the agents service on behalf of the caller (who is its
    actor): a customer who may chat with an agent but not create things still gets a conversation."""
    new = await conversation_thing(ctx, payload, agent_ids)
    async with ctx.transaction() as tx:
        return await insert_conversation(tx, new)


@dataclass(frozen=True, slots=True)
class NewConversation:
    """A conversation whose thing exists, to be stored in the transaction that starts its first run."""

    thing_id: UUID
    payload: ConversationCreate
    agent_ids: list[UUID]


async def conversation_thing(ctx: WorkContext, payload: ConversationCreate, agent_ids: list[UUID]) -> NewConversation:
    """The `conversation` thing of a conversation about to be opened (its id is the conversation's)."""
    auth = agents_identity(ctx.auth.org_id, ctx.auth.actor_id)
    thing = await ctx.call(THING_CREATE, {"type": "conversation", "name": payload.title, "status": "active",
                                          "properties": {"externalThreadId": payload.external_thread_id}}, auth=auth)
    return NewConversation(thing.id, payload, agent_ids)


async def insert_conversation(tx: WorkContext, new: NewConversation) -> ConversationRow:
    """In `tx`: the conversation of `new.thing_id` with its creator and agents."""
    auth, payload, agent_ids = tx.auth, new.payload, new.agent_ids
    row = await repo.insert_conversation(tx.session, {
        "id": new.thing_id, "org_id": auth.org_id, "title": payload.title, "tags": payload.tags,
        "external_thread_id": payload.external_thread_id, "created_by": auth.actor_id,
    }, [("person", auth.actor_id), *(("agent", a) for a in agent_ids)])
    if row is None:  # a concurrent request opened the conversation of this external thread first
        found = await repo.get_conversation(tx.session, auth.org_id, external_thread_id=payload.external_thread_id)
        if found is None:
            raise Conflict("the conversation could not be opened")
        return found
    return row


async def check_member(ctx: WorkContext, row: ConversationRow) -> None:
    """A caller who may not read the org's conversations (a customer) may use only those they take part in."""
    if check(ctx.auth, "agents", "read").allowed:
        return
    people = await repo.participants_of(ctx.session, ctx.auth.org_id, [row.id])
    if not any(p.kind == "person" and p.member_id == ctx.auth.actor_id and p.status == "active" for p in people):
        raise ConversationNotFound(f"no conversation {row.id} of yours in this organization")


async def create_conversation(ctx: WorkContext, payload: ConversationCreate) -> Conversation:
    require(ctx.auth, "agents", "create")
    async with ctx.transaction() as tx:
        agent_ids = [(await load_agent(tx, AgentRef(slug=slug))).id for slug in payload.agents]
        if payload.external_thread_id and await repo.get_conversation(
                tx.session, ctx.auth.org_id, external_thread_id=payload.external_thread_id):
            raise Conflict("the organization has a conversation with this external thread id already",
                           {"external_thread_id": payload.external_thread_id})
    row = await open_conversation(ctx, payload, agent_ids)
    async with ctx.transaction() as tx:
        return (await to_conversations(tx, [row]))[0]


async def get_conversation(ctx: WorkContext, conversation_id: UUID | None = None,
                           external_thread_id: str | None = None) -> Conversation:
    require(ctx.auth, "agents", "read")
    if external_thread_id is not None:
        row = await repo.get_conversation(ctx.session, ctx.auth.org_id, external_thread_id=external_thread_id)
        if row is None:
            raise ConversationNotFound("no conversation with this external thread id in this organization")
    else:
        row = await load_conversation(ctx, conversation_id)
    return (await to_conversations(ctx, [row]))[0]


async def list_conversations(ctx: WorkContext, query: ConversationQuery) -> ConversationPage:
    require(ctx.auth, "agents", "list")
    rows = await repo.list_conversations(ctx.session, ctx.auth.org_id, status=query.status, cursor=query.cursor,
                                         limit=query.limit)
    return ConversationPage(conversations=await to_conversations(ctx, rows),
                            next_cursor=rows[-1].id if len(rows) == query.limit else None)


async def update_conversation(ctx: WorkContext, payload: ConversationUpdate) -> Conversation:
    require(ctx.auth, "agents", "update")
    await load_conversation(ctx, payload.id)
    values = payload.model_dump(exclude={"id"}, exclude_none=True)
    row = await repo.update_conversation(ctx.session, ctx.auth.org_id, payload.id, values)
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type="conversation",
                   metadata={"entityType": "conversation", "fields": sorted(values)})
    return (await to_conversations(ctx, [row]))[0]


async def _member_id(ctx: WorkContext, change: ParticipantChange) -> UUID:
    if change.kind == "agent" and change.agent_slug is not None:
        return (await load_agent(ctx, AgentRef(slug=change.agent_slug))).id
    if change.kind == "agent":
        return (await load_agent(ctx, AgentRef(id=change.member_id))).id
    return change.member_id


async def add_participant(ctx: WorkContext, change: ParticipantChange) -> Participant:
    require(ctx.auth, "agents", "update")
    row = await load_conversation(ctx, change.conversation_id)
    member = await _member_id(ctx, change)
    added = await repo.add_participant(ctx.session, ctx.auth.org_id, row.id, change.kind, member)
    await ctx.emit(EventType.COMMUNICATION_EVENT, target_id=row.id, target_type="conversation", metadata={
        "protocol": "native", "messageType": "participant_added", "kind": change.kind, "memberId": str(member)})
    return added


async def remove_participant(ctx: WorkContext, change: ParticipantChange) -> Participant:
    require(ctx.auth, "agents", "update")
    row = await load_conversation(ctx, change.conversation_id)
    member = await _member_id(ctx, change)
    removed = await repo.remove_participant(ctx.session, ctx.auth.org_id, row.id, change.kind, member)
    if removed is None:
        raise ParticipantNotFound(f"{change.kind} {member} is not an active participant of this conversation")
    await ctx.emit(EventType.COMMUNICATION_EVENT, target_id=row.id, target_type="conversation", metadata={
        "protocol": "native", "messageType": "participant_removed", "kind": change.kind, "memberId": str(member)})
    return removed


def user_message(payload: MessageAdd | Any, author_id: UUID, role: str = "user") -> dict[str, Any]:
    return {
        "role": role, "author_kind": "person" if role == "user" else "system", "author_id": author_id,
        "content": payload.message if hasattr(payload, "message") else payload.content,
        "step": payload.step.value if payload.step else None, "tags": payload.tags,
        "attachments": [a.model_dump(mode="json", exclude_none=True) for a in payload.attachments],
    }


async def add_message(ctx: WorkContext, payload: MessageAdd) -> Message:
    require(ctx.auth, "agents", "create")
    async with ctx.transaction() as tx:
        row = await load_conversation(tx, payload.conversation_id)
        if row.status != "active":
            raise ConversationClosed(f"the conversation is {row.status}")
        message = (await repo.append_messages(tx.session, ctx.auth.org_id, row.id,
                                              [user_message(payload, ctx.auth.actor_id, payload.role)]))[0]
        await tx.emit(EventType.COMMUNICATION_EVENT, target_id=row.id, target_type="conversation", metadata={
            "protocol": "native", "messageType": "message_sent", "messageId": str(message.id), "role": message.role})
    embed_later(ctx, [message])
    return message


async def list_messages(ctx: WorkContext, query: MessageQuery) -> MessagePage:
    require(ctx.auth, "agents", "read")
    await load_conversation(ctx, query.conversation_id)
    found = await repo.list_messages(ctx.session, ctx.auth.org_id, query.conversation_id, after_seq=query.after_seq,
                                     limit=query.limit)
    return MessagePage(messages=found, next_seq=found[-1].seq if len(found) == query.limit else None)


def embed_later(ctx: WorkContext, messages: list[Message]) -> None:
    """Embed the messages' text through the knowledge service, after the reply, as the agents service itself."""
    texts = [m for m in messages if m.content and m.role in ("user", "assistant")]
    if texts and ctx.runtime.settings.agents_embed_messages:
        work = ctx.runtime.background(ctx.auth.org_id, cause=ctx.envelope, on_behalf_of=ctx.auth.actor_id)
        state_of(ctx.runtime).spawn(_embed(work, texts), name="agents-embed-messages")


async def _embed(ctx: WorkContext, messages: list[Message]) -> None:
    items = [{"knowledge_type": "vector_only", "text": m.content, "source_thing_id": str(m.conversation_id),
              "metadata": {"messageId": str(m.id), "role": m.role, "seq": m.seq}}
             for m in messages]
    try:
        await ctx.call(ITEM_ADD_BATCH, {"items": items}, timeout=60)
    except Exception as error:  # the messages stand; only their search by meaning is missing
        log.warning("could not embed %d message(s) of conversation %s: %r", len(items), messages[0].conversation_id,
                    error)


async def search_history(ctx: WorkContext, payload: HistorySearch) -> HistoryHits:
    require(ctx.auth, "agents", "read")
    async with ctx.transaction() as tx:
        await load_conversation(tx, payload.conversation_id)
    found = await ctx.call(SEARCH, {"query": payload.query, "k": payload.k, "filters": {
        "source_thing_id": str(payload.conversation_id), "knowledge_types": ["vector_only"]}})
    hits = [(UUID(hit.item.metadata["messageId"]), hit.score) for hit in found.hits
            if hit.item.metadata.get("messageId")]
    async with ctx.transaction() as tx:
        texts = await repo.message_texts(tx.session, ctx.auth.org_id, payload.conversation_id, [m for m, _ in hits])
    return HistoryHits(hits=[HistoryHit(message_id=m, text=texts[m], score=score) for m, score in hits if m in texts])


