"""The SQL of conversations, their participants and messages; every statement filters on the caller's org.

A message's `seq` comes from its conversation's `next_seq`, taken with the same UPDATE that
moves `last_message_at`: writers of one conversation queue on its row, so seqs never repeat or skip.
"""

import functools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models import conversations, messages, participants
from services.agents.rows import ConversationRow
from shared.contracts.agents import Message, Participant
from shared.kernel.ids import uuid7

NOW = sa.func.clock_timestamp()


async def insert_conversation(session: AsyncConnection, values: dict[str, Any],
                              members: Sequence[tuple[str, UUID]] = ()) -> ConversationRow | None:
    """The conversation with its first participants (kind, member id), in one statement; None (and nobody added)
    when the org has a conversation with that external thread id already."""
    members = list(dict.fromkeys(members))
    statement = _insert_conversation(tuple(values), len(members), values.get("external_thread_id") is not None)
    params = {**{f"conversation_{c}": v for c, v in values.items()},
              **{f"member_{i}_{k}": v for i, (kind, member) in enumerate(members)
                 for k, v in (("id", uuid7()), ("kind", kind), ("member", member))}}
    row = (await session.execute(statement, params)).first()
    return ConversationRow.of(row) if row else None


@functools.lru_cache(maxsize=32)
def _insert_conversation(columns: tuple[str, ...], members: int, threaded: bool) -> sa.Select:
    """`insert_conversation`'s statement, built once per shape. Only a conversation of an external thread can meet
    one opened first (ON CONFLICT, which the driver compiles each time); another has a new id, a plain INSERT."""
    values = {c: sa.bindparam(f"conversation_{c}", type_=conversations.c[c].type) for c in columns}
    if threaded:
        insert = pg_insert(conversations).values(values).on_conflict_do_nothing()
    else:
        insert = sa.insert(conversations).values(values)
    opened = insert.returning(conversations).cte("opened")
    statement = sa.select(opened)
    if members:
        joined = sa.insert(participants).from_select(  # new rows of a new conversation: nothing to meet
            ["id", "org_id", "conversation_id", "kind", "member_id"],
            sa.union_all(*(sa.select(sa.bindparam(f"member_{i}_id", type_=sa.Uuid), opened.c.org_id, opened.c.id,
                                     sa.bindparam(f"member_{i}_kind", type_=sa.Text),
                                     sa.bindparam(f"member_{i}_member", type_=sa.Uuid))
                           for i in range(members))),
        ).cte("joined")
        statement = statement.add_cte(joined)
    return statement


async def get_conversation(
    session: AsyncConnection, org_id: UUID, conversation_id: UUID | None = None, *, external_thread_id: str | None = None
) -> ConversationRow | None:
    statement = sa.select(conversations).where(conversations.c.org_id == org_id)
    if external_thread_id is not None:
        statement = statement.where(conversations.c.external_thread_id == external_thread_id)
    else:
        statement = statement.where(conversations.c.id == conversation_id)
    row = (await session.execute(statement)).first()
    return ConversationRow.of(row) if row else None


async def list_conversations(
    session: AsyncConnection, org_id: UUID, *, status: str | None, cursor: UUID | None, limit: int
) -> list[ConversationRow]:
    statement = (sa.select(conversations).where(conversations.c.org_id == org_id)
                 .order_by(conversations.c.id).limit(limit))
    if status is not None:
        statement = statement.where(conversations.c.status == status)
    if cursor is not None:
        statement = statement.where(conversations.c.id > cursor)
    return [ConversationRow.of(row) for row in await session.execute(statement)]


async def update_conversation(
    session: AsyncConnection, org_id: UUID, conversation_id: UUID, values: dict[str, Any]
) -> ConversationRow | None:
    statement = (
        sa.update(conversations).where(conversations.c.org_id == org_id, conversations.c.id == conversation_id)
        .values(**values, updated_at=NOW).returning(conversations)
    )
    row = (await session.execute(statement)).first()
    return ConversationRow.of(row) if row else None


async def participants_of(session: AsyncConnection, org_id: UUID, conversation_ids: Sequence[UUID]) -> list[Participant]:
    statement = (
        sa.select(participants)
        .where(participants.c.org_id == org_id, participants.c.conversation_id.in_(list(conversation_ids)))
        .order_by(participants.c.added_at)
    )
    return [Participant.model_validate(row._mapping, from_attributes=False) for row in await session.execute(statement)]


async def add_participant(
    session: AsyncConnection, org_id: UUID, conversation_id: UUID, kind: str, member_id: UUID
) -> Participant:
    """The active participant, added now or found already there."""
    statement = pg_insert(participants).values(
        id=uuid7(), org_id=org_id, conversation_id=conversation_id, kind=kind, member_id=member_id
    ).on_conflict_do_nothing()
    await session.execute(statement)
    found = sa.select(participants).where(
        participants.c.org_id == org_id, participants.c.conversation_id == conversation_id,
        participants.c.kind == kind, participants.c.member_id == member_id, participants.c.status == "active",
    )
    return Participant.model_validate((await session.execute(found)).one()._mapping)


async def join(session: AsyncConnection, org_id: UUID, conversation_id: UUID, members: Sequence[tuple[str, UUID]]) -> None:
    """Make the (kind, member id) pairs active participants (those already there stay as they are), one statement."""
    if members:
        await session.execute(pg_insert(participants).values([
            {"id": uuid7(), "org_id": org_id, "conversation_id": conversation_id, "kind": kind, "member_id": member}
            for kind, member in members]).on_conflict_do_nothing())


async def remove_participant(
    session: AsyncConnection, org_id: UUID, conversation_id: UUID, kind: str, member_id: UUID
) -> Participant | None:
    statement = (
        sa.update(participants)
        .where(participants.c.org_id == org_id, participants.c.conversation_id == conversation_id,
               participants.c.kind == kind, participants.c.member_id == member_id, participants.c.status == "active")
        .values(status="removed", removed_at=NOW).returning(participants)
    )
    row = (await session.execute(statement)).first()
    return Participant.model_validate(row._mapping) if row else None


async def append_messages(
    session: AsyncConnection, org_id: UUID, conversation_id: UUID, new: Sequence[dict[str, Any]]
) -> list[Message]:
    """Append `new` messages in order, each with the next seq of its conversation (taken in the same statement)."""
    if not new:
        return []
    columns = tuple(new[0])
    params = {"conversation_org": org_id, "conversation_ref": conversation_id,
              **{f"message_{i}_{c}": message[c] for i, message in enumerate(new) for c in columns},
              **{f"message_{i}_id": uuid7() for i in range(len(new))}}
    result = await session.execute(_append(columns, len(new)), params)
    return sorted((Message.model_validate(row._mapping) for row in result), key=lambda m: m.seq)


@functools.lru_cache(maxsize=64)
def _append(columns: tuple[str, ...], count: int) -> sa.Insert:
    """`append_messages`' statement for `count` messages with these columns, built once (one message, the usual
    case, is also compiled once: a statement of several VALUES rows is compiled each time)."""
    org, conversation = sa.bindparam("conversation_org", type_=sa.Uuid), sa.bindparam("conversation_ref", type_=sa.Uuid)
    taken = (
        sa.update(conversations).where(conversations.c.org_id == org, conversations.c.id == conversation)
        .values(next_seq=conversations.c.next_seq + count, last_message_at=NOW, updated_at=NOW)
        .returning(conversations.c.next_seq).cte("taken")
    )
    rows = [{"id": sa.bindparam(f"message_{i}_id", type_=sa.Uuid), "org_id": org, "conversation_id": conversation,
             "seq": sa.select(taken.c.next_seq - (count - i)).scalar_subquery(),
             **{c: sa.bindparam(f"message_{i}_{c}", type_=messages.c[c].type) for c in columns}}
            for i in range(count)]
    return sa.insert(messages).values(rows if count > 1 else rows[0]).add_cte(taken).returning(messages)


async def list_messages(
    session: AsyncConnection, org_id: UUID, conversation_id: UUID, *, after_seq: int = 0, limit: int = 100
) -> list[Message]:
    statement = (
        sa.select(messages)
        .where(messages.c.org_id == org_id, messages.c.conversation_id == conversation_id, messages.c.seq > after_seq)
        .order_by(messages.c.seq).limit(limit)
    )
    return [Message.model_validate(row._mapping) for row in await session.execute(statement)]


async def message_texts(session: AsyncConnection, org_id: UUID, conversation_id: UUID,
                        ids: Sequence[UUID]) -> dict[UUID, str | None]:
    """The content of these messages of the conversation, by id (ids of other conversations are left out)."""
    statement = sa.select(messages.c.id, messages.c.content).where(
        messages.c.org_id == org_id, messages.c.conversation_id == conversation_id, messages.c.id.in_(list(ids)))
    return {row.id: row.content for row in await session.execute(statement)}


async def recent_messages(session: AsyncConnection, org_id: UUID, conversation_id: UUID, limit: int) -> list[Message]:
    """The conversation's last `limit` messages, oldest first."""
    statement = (
        sa.select(messages)
        .where(messages.c.org_id == org_id, messages.c.conversation_id == conversation_id)
        .order_by(messages.c.seq.desc()).limit(limit)
    )
    return sorted((Message.model_validate(row._mapping) for row in await session.execute(statement)),
                  key=lambda m: m.seq)
