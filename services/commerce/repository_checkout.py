"""Every SQL statement of ACP checkout (`commerce.checkout_sessions`, `orders`, `payment_attempts`).

All run in the caller's org transaction and filter on its org (RLS backs that up). A change to a session is
a compare-and-set on its `version` (`save` returns False when somebody changed it since it was read), and
`complete` / `cancel` read it `FOR UPDATE`, so two of them on one session run one after the other.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.commerce.models_checkout import SessionRow, checkout_sessions, orders, payment_attempts

_S = checkout_sessions.c


# The statements of a checkout's every step, built once: SQLAlchemy builds and keys a statement made per call
# anew (~15 % of commerce's CPU in an ACP flow); values come as parameters (an INSERT's or UPDATE's by column name).
_INSERT_SESSION = sa.insert(checkout_sessions)
_GET_SESSION = sa.select(checkout_sessions).where(_S.org_id == sa.bindparam("w_org_id"), _S.id == sa.bindparam("w_id"))
_LOCK_SESSION = _GET_SESSION.with_for_update()
_SAVE_SESSION = sa.update(checkout_sessions).where(_S.org_id == sa.bindparam("w_org_id"), _S.id == sa.bindparam("w_id"),
                                                   _S.version == sa.bindparam("w_version"))
_SAVED = ("status", "currency", "items", "buyer", "fulfillment_details", "selected_fulfillment_options", "extras", "body",
          "total", "order_id", "updated_at")
_INSERT_ORDER = sa.insert(orders).returning(orders.c.order_number)
_SET_ORDER = (sa.update(orders).where(orders.c.org_id == sa.bindparam("w_org_id"), orders.c.id == sa.bindparam("w_id"))
              .values(updated_at=sa.func.clock_timestamp()))
_INSERT_ATTEMPT = sa.insert(payment_attempts)


def _session(row: Any) -> SessionRow:
    return SessionRow(*row)


async def insert_session(session: AsyncConnection, row: SessionRow) -> None:
    await session.execute(_INSERT_SESSION, {name: getattr(row, name) for name in SessionRow.__slots__})


async def get_session(session: AsyncConnection, org_id: UUID, session_id: str, *, lock: bool = False) -> SessionRow | None:
    found = (await session.execute(_LOCK_SESSION if lock else _GET_SESSION, {"w_org_id": org_id, "w_id": session_id})
             ).first()
    return _session(found) if found else None


async def save_session(session: AsyncConnection, row: SessionRow, *, expected_version: int) -> bool:
    """Write `row` (version = expected + 1) if the stored one is still at `expected_version`."""
    values = {name: getattr(row, name) for name in _SAVED}
    done = (await session.execute(_SAVE_SESSION, {**values, "version": expected_version + 1, "w_org_id": row.org_id,
                                                  "w_id": row.id, "w_version": expected_version})).rowcount == 1
    if done:
        row.version = expected_version + 1
    return done


async def list_sessions(session: AsyncConnection, org_id: UUID, status: str | None, before: datetime | None,
                        limit: int) -> list[SessionRow]:
    statement = sa.select(checkout_sessions).where(_S.org_id == org_id)
    if status is not None:
        statement = statement.where(_S.status == status)
    if before is not None:
        statement = statement.where(_S.created_at < before)
    statement = statement.order_by(_S.created_at.desc(), _S.id.desc()).limit(limit)
    return [_session(r) for r in (await session.execute(statement)).all()]


async def insert_order(session: AsyncConnection, *, order_id: str, org_id: UUID, checkout_session_id: str, status: str,
                       currency: str, total: int, provider: str | None, charge_id: str | None,
                       payment_thing_id: UUID | None, created_by: UUID) -> int:
    """A new order; its `order_number` (from the sequence) is returned."""
    return (await session.execute(_INSERT_ORDER, {
        "id": order_id, "org_id": org_id, "checkout_session_id": checkout_session_id, "status": status,
        "currency": currency, "total": total, "provider": provider, "charge_id": charge_id,
        "payment_thing_id": payment_thing_id, "body": {}, "created_by": created_by})).scalar_one()


async def set_order_body(session: AsyncConnection, org_id: UUID, order_id: str, body: dict[str, Any],
                         status: str | None = None) -> None:
    values: dict[str, Any] = {"body": body, "w_org_id": org_id, "w_id": order_id}
    if status is not None:
        values["status"] = status
    await session.execute(_SET_ORDER, values)


async def order_payment(session: AsyncConnection, org_id: UUID, order_id: str) -> UUID | None:
    """The `payment` thing of an order, if it has one."""
    statement = sa.select(orders.c.payment_thing_id).where(orders.c.org_id == org_id, orders.c.id == order_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def record_attempt(session: AsyncConnection, *, attempt_id: UUID, org_id: UUID, checkout_session_id: str,
                         provider: str, outcome: str, reason: str | None, amount: int, currency: str,
                         charge_id: str | None) -> None:
    await session.execute(_INSERT_ATTEMPT, {
        "id": attempt_id, "org_id": org_id, "checkout_session_id": checkout_session_id, "provider": provider,
        "outcome": outcome, "reason": reason, "amount": amount, "currency": currency, "charge_id": charge_id})
