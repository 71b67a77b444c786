"""Every SQL statement of reminders; each one filters on the caller's org (Row-Level Security backs it up)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models_scheduling import ReminderRow, reminders


def _rows(result: Any) -> list[ReminderRow]:
    return [ReminderRow(*row) for row in result]


async def insert(session: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[ReminderRow]:
    if not rows:
        return []
    return _rows(await session.execute(sa.insert(reminders).values(list(rows)).returning(*reminders.columns)))


async def get(session: AsyncConnection, org_id: UUID, reminder_id: UUID, *,
              for_update: bool = False) -> ReminderRow | None:
    statement = sa.select(reminders).where(reminders.c.org_id == org_id, reminders.c.id == reminder_id)
    found = _rows(await session.execute(statement.with_for_update() if for_update else statement))
    return found[0] if found else None


async def of_meeting(session: AsyncConnection, org_id: UUID, meeting_id: UUID, *,
                     for_update: bool = False) -> list[ReminderRow]:
    statement = sa.select(reminders).where(reminders.c.org_id == org_id, reminders.c.meeting_id == meeting_id)
    statement = statement.order_by(reminders.c.remind_at, reminders.c.id)
    return _rows(await session.execute(statement.with_for_update() if for_update else statement))


async def page(session: AsyncConnection, org_id: UUID, *, meeting_id: UUID | None, status: str | None,
               limit: int = 500) -> list[ReminderRow]:
    conditions = [reminders.c.org_id == org_id]
    if meeting_id is not None:
        conditions.append(reminders.c.meeting_id == meeting_id)
    if status is not None:
        conditions.append(reminders.c.status == status)
    statement = sa.select(reminders).where(*conditions).order_by(reminders.c.remind_at, reminders.c.id).limit(limit)
    return _rows(await session.execute(statement))


async def update(session: AsyncConnection, org_id: UUID, reminder_id: UUID, values: dict[str, Any]) -> ReminderRow:
    statement = (sa.update(reminders).where(reminders.c.org_id == org_id, reminders.c.id == reminder_id)
                 .values(**values).returning(*reminders.columns))
    return _rows(await session.execute(statement))[0]


async def mark_sent(session: AsyncConnection, org_id: UUID, reminder_id: UUID, sent_at: datetime) -> ReminderRow | None:
    """Sent, if it still was scheduled (None: sent or cancelled already, by an earlier attempt or a person)."""
    statement = (sa.update(reminders)
                 .where(reminders.c.org_id == org_id, reminders.c.id == reminder_id, reminders.c.status == "scheduled")
                 .values(status="sent", sent_at=sent_at).returning(*reminders.columns))
    found = _rows(await session.execute(statement))
    return found[0] if found else None
