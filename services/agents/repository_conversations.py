"""The SQL of conversations, their participants and messages; every statement filters on the caller's org.

A message's `seq` comes from its conversation's `next_seq`, taken with the same UPDATE that
moves `last_message_at`: writers of one conversation queue on its row, so seqs never repeat or skip.
"""

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


async def insert_conversation(session: AsyncConnection, values: dict[str, Any]) -> ConversationRow | None:
    """None when the org has a conversation with that external thread id already."""
    statement = pg_insert(conversations).values(**values).on_conflict_do_nothing()
    row = (await session.execute(statement.returning(conversations))).first()
    return ConversationRow.of(row) if row else None


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
    """Append `new` messages in order, each with the next seq of its conversation."""
    if not new:
        return []
    taken = (
        sa.update(conversations).where(conversations.c.org_id == org_id, conversations.c.id == conversation_id)
        .values(next_seq=conversations.c.next_seq + len(new), last_message_at=NOW, updated_at=NOW)
        .returning(conversations.c.next_seq)
    )
    end = (await session.execute(taken)).scalar_one()
    rows = [
        {"id": uuid7(), "org_id": org_id, "conversation_id": conversation_id, "seq": end - len(new) + i, **message}
        for i, message in enumerate(new)
    ]
    result = await session.execute(sa.insert(messages).returning(messages), rows)
    return sorted((Message.model_validate(row._mapping) for row in result), key=lambda m: m.seq)


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
