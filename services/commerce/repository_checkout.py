"""Every SQL statement of ACP checkout (`commerce.checkout_sessions`, `orders`, `payment_attempts`).

All run in the caller's org transaction and filter on its org (RLS backs that up). A change to a session is
a compare-and-set on its `version` (`save` returns False when somebody changed it since it was read), and
`complete` / `cancel` read it `FOR UPDATE`, so two of them on one session run one after the other.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.commerce.models_checkout import SessionRow, checkout_sessions, orders, payment_attempts

_S = checkout_sessions.c


def _session(row: Any) -> SessionRow:
    return SessionRow(*row)


async def insert_session(session: AsyncSession, row: SessionRow) -> None:
    values = {name: getattr(row, name) for name in SessionRow.__slots__}
    await session.execute(sa.insert(checkout_sessions).values(**values))


async def get_session(session: AsyncSession, org_id: UUID, session_id: str, *, lock: bool = False) -> SessionRow | None:
    statement = sa.select(checkout_sessions).where(_S.org_id == org_id, _S.id == session_id)
    if lock:
        statement = statement.with_for_update()
    found = (await session.execute(statement)).first()
    return _session(found) if found else None


async def save_session(session: AsyncSession, row: SessionRow, *, expected_version: int) -> bool:
    """Write `row` (version = expected + 1) if the stored one is still at `expected_version`."""
    values = {name: getattr(row, name) for name in ("status", "currency", "items", "buyer", "fulfillment_details",
                                                     "selected_fulfillment_options", "extras", "body", "total",
                                                     "order_id", "updated_at")}
    statement = (sa.update(checkout_sessions)
                 .where(_S.org_id == row.org_id, _S.id == row.id, _S.version == expected_version)
                 .values(**values, version=expected_version + 1))
    done = (await session.execute(statement)).rowcount == 1
    if done:
        row.version = expected_version + 1
    return done


async def list_sessions(session: AsyncSession, org_id: UUID, status: str | None, before: datetime | None,
                        limit: int) -> list[SessionRow]:
    statement = sa.select(checkout_sessions).where(_S.org_id == org_id)
    if status is not None:
        statement = statement.where(_S.status == status)
    if before is not None:
        statement = statement.where(_S.created_at < before)
    statement = statement.order_by(_S.created_at.desc(), _S.id.desc()).limit(limit)
    return [_session(r) for r in (await session.execute(statement)).all()]


async def insert_order(session: AsyncSession, *, order_id: str, org_id: UUID, checkout_session_id: str, status: str,
                       currency: str, total: int, provider: str | None, charge_id: str | None,
                       payment_thing_id: UUID | None, created_by: UUID) -> int:
    """A new order; its `order_number` (from the sequence) is returned."""
    statement = sa.insert(orders).values(
        id=order_id, org_id=org_id, checkout_session_id=checkout_session_id, status=status, currency=currency,
        total=total, provider=provider, charge_id=charge_id, payment_thing_id=payment_thing_id, body={},
        created_by=created_by,
    ).returning(orders.c.order_number)
    return (await session.execute(statement)).scalar_one()


async def set_order_body(session: AsyncSession, org_id: UUID, order_id: str, body: dict[str, Any],
                         status: str | None = None) -> None:
    values: dict[str, Any] = {"body": body, "updated_at": sa.func.clock_timestamp()}
    if status is not None:
        values["status"] = status
    await session.execute(sa.update(orders).where(orders.c.org_id == org_id, orders.c.id == order_id).values(**values))


async def order_payment(session: AsyncSession, org_id: UUID, order_id: str) -> UUID | None:
    """The `payment` thing of an order, if it has one."""
    statement = sa.select(orders.c.payment_thing_id).where(orders.c.org_id == org_id, orders.c.id == order_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def record_attempt(session: AsyncSession, *, attempt_id: UUID, org_id: UUID, checkout_session_id: str,
                         provider: str, outcome: str, reason: str | None, amount: int, currency: str,
                         charge_id: str | None) -> None:
    await session.execute(sa.insert(payment_attempts).values(
        id=attempt_id, org_id=org_id, checkout_session_id=checkout_session_id, provider=provider, outcome=outcome,
        reason=reason, amount=amount, currency=currency, charge_id=charge_id))
