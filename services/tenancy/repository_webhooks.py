"""Every SQL statement about inbound webhook sources and their receipts; always org-scoped.

The one lookup before an org is known is the receiver's: a webhook names only its source's id, so
`find_source` reads it under `platform_access` (for exactly that statement), and the caller then
switches the transaction to the source's org. A receipt is claimed with `INSERT ... ON CONFLICT DO
NOTHING`: of two deliveries of one webhook id, the second waits for the first's transaction and finds
the row, so only one acts.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy.models import webhook_receipts, webhook_sources
from services.tenancy.repository import Row, insert_unique, platform_access


async def insert_source(session: AsyncConnection, values: dict[str, Any]) -> None:
    await insert_unique(session, webhook_sources, values, "a webhook source with this name")


async def get_source(session: AsyncConnection, org_id: UUID, source_id: UUID, *, for_update: bool = False) -> Row | None:
    statement = sa.select(webhook_sources).where(webhook_sources.c.org_id == org_id, webhook_sources.c.id == source_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).first()


async def find_source(session: AsyncConnection, source_id: UUID) -> Row | None:
    """Any org's source by id: the receiver's lookup, before it knows the org."""
    async with platform_access(session):
        return (await session.execute(sa.select(webhook_sources).where(webhook_sources.c.id == source_id))).first()


async def list_sources(session: AsyncConnection, org_id: UUID, limit: int) -> Sequence[Row]:
    statement = sa.select(webhook_sources).where(webhook_sources.c.org_id == org_id)
    return (await session.execute(statement.order_by(webhook_sources.c.name).limit(limit))).all()


async def delete_source(session: AsyncConnection, org_id: UUID, source_id: UUID) -> bool:
    statement = webhook_sources.delete().where(webhook_sources.c.org_id == org_id, webhook_sources.c.id == source_id)
    return (await session.execute(statement)).rowcount > 0


async def rotate_secret(session: AsyncConnection, org_id: UUID, source_id: UUID, sealed: bytes, hint: str,
                        previous: bytes | None, previous_valid_until: datetime | None) -> None:
    statement = webhook_sources.update().where(
        webhook_sources.c.org_id == org_id, webhook_sources.c.id == source_id
    ).values(secret_sealed=sealed, secret_hint=hint, previous_secret_sealed=previous,
             previous_valid_until=previous_valid_until, rotated_at=sa.func.now(), updated_at=sa.func.now())
    await session.execute(statement)


async def claim_receipt(session: AsyncConnection, values: dict[str, Any]) -> bool:
    """Record a webhook id as received; False when it was already (the other delivery committed first)."""
    statement = pg_insert(webhook_receipts).values(**values).on_conflict_do_nothing(
        index_elements=[webhook_receipts.c.source_id, webhook_receipts.c.webhook_id]
    ).returning(webhook_receipts.c.webhook_id)
    return (await session.execute(statement)).first() is not None


async def get_receipt(session: AsyncConnection, org_id: UUID, source_id: UUID, webhook_id: str) -> Row | None:
    statement = sa.select(webhook_receipts).where(
        webhook_receipts.c.org_id == org_id, webhook_receipts.c.source_id == source_id,
        webhook_receipts.c.webhook_id == webhook_id,
    )
    return (await session.execute(statement)).first()


async def set_receipt_event(session: AsyncConnection, org_id: UUID, source_id: UUID, webhook_id: str,
                            event_type: str, event_id: UUID) -> None:
    statement = webhook_receipts.update().where(
        webhook_receipts.c.org_id == org_id, webhook_receipts.c.source_id == source_id,
        webhook_receipts.c.webhook_id == webhook_id,
    ).values(event_type=event_type, event_id=event_id)
    await session.execute(statement)
