"""Every SQL statement of ACP checkout (`commerce.checkout_sessions`, `orders`, `payment_attempts`).

All run in the caller's org transaction and filter on its org (RLS backs that up). A change to a session is
a compare-and-set on its `version` (`save` returns False when somebody changed it since it was read), and
`complete` / `cancel` read it `FOR UPDATE`, so two of them on one session run one after the other.
"""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.commerce.models_checkout import SessionRow, checkout_sessions, orders
from shared.runtime.sql import Sql

_S = checkout_sessions.c


_COLUMNS = SessionRow.__slots__
_JSON = frozenset({"items", "buyer", "fulfillment_details", "selected_fulfillment_options", "extras", "body"})
_SAVED = ("status", "currency", "items", "buyer", "fulfillment_details", "selected_fulfillment_options", "extras", "body",
          "total", "order_id", "updated_at")


def _cast(name: str, n: int) -> str:
    return f"${n}::jsonb" if name in _JSON else f"${n}"


def _param(row: SessionRow, name: str) -> Any:
    value = getattr(row, name)
    return json.dumps(value) if name in _JSON else value


# A checkout's every step runs these (shared/runtime/sql.py: on the driver, a fraction of SQLAlchemy's cost).
_INSERT_SESSION = Sql(f"INSERT INTO commerce.checkout_sessions ({', '.join(_COLUMNS)})"
                      f" VALUES ({', '.join(_cast(name, n) for n, name in enumerate(_COLUMNS, 1))})")
_GET_SESSION = Sql(f"SELECT {', '.join(_COLUMNS)} FROM commerce.checkout_sessions WHERE org_id = $1 AND id = $2")
_LOCK_SESSION = Sql(f"{_GET_SESSION.text} FOR UPDATE")
_SAVE_SESSION = Sql(
    f"UPDATE commerce.checkout_sessions SET {', '.join(f'{name} = {_cast(name, n)}' for n, name in enumerate(_SAVED, 1))},"
    f" version = ${len(_SAVED) + 1} WHERE org_id = ${len(_SAVED) + 2} AND id = ${len(_SAVED) + 3}"
    f" AND version = ${len(_SAVED) + 4}")
_SET_ORDER = Sql("UPDATE commerce.orders SET body = $3::jsonb, status = coalesce($4, status),"
                 " updated_at = clock_timestamp() WHERE org_id = $1 AND id = $2")
# A charge's attempt: alone when declined (`record_attempt`), with its order otherwise (`_INSERT_ORDER`).
_ATTEMPT = ("INSERT INTO commerce.payment_attempts (id, org_id, checkout_session_id, provider, outcome, reason, amount,"
            " currency, charge_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
_INSERT_ATTEMPT = Sql(_ATTEMPT)
_NUMBERED = ("jsonb_set(jsonb_set($13::jsonb, '{order_number}', to_jsonb(drawn.number::text)),"
             " '{confirmation,confirmation_number}', to_jsonb(drawn.number::text))")
"""The order's body as stored: the ACP Order's two number fields (`order_number`, `confirmation.confirmation_number`,
as text) set to the number drawn for it (`_numbered` does the same to the answered body)."""
# A complete's attempt, its order and the order's body in one round trip (they were three): the body carries the
# order's number, so the statement draws it from the column's own sequence (migrations/v0002) before the insert.
_INSERT_ORDER = Sql(
    f"WITH attempt AS ({_ATTEMPT}), drawn AS (SELECT nextval('commerce.order_numbers') AS number)"
    " INSERT INTO commerce.orders (id, org_id, checkout_session_id, status, currency, total, provider, charge_id,"
    f" order_number, body, created_by) SELECT $10, $2, $3, $11, $8, $7, $12, $9, drawn.number, {_NUMBERED}, $14"
    " FROM drawn RETURNING order_number")


async def insert_session(session: AsyncConnection, row: SessionRow) -> None:
    await _INSERT_SESSION.execute(session, *(_param(row, name) for name in _COLUMNS))


async def get_session(session: AsyncConnection, org_id: UUID, session_id: str, *, lock: bool = False) -> SessionRow | None:
    found = await (_LOCK_SESSION if lock else _GET_SESSION).fetchrow(session, org_id, session_id)
    return SessionRow(*found) if found else None


async def save_session(session: AsyncConnection, row: SessionRow, *, expected_version: int) -> bool:
    """Write `row` (version = expected + 1) if the stored one is still at `expected_version`."""
    done = await _SAVE_SESSION.execute(session, *(_param(row, name) for name in _SAVED), expected_version + 1,
                                       row.org_id, row.id, expected_version) == 1
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
    return [SessionRow(*r) for r in (await session.execute(statement)).all()]


async def insert_order(session: AsyncConnection, *, attempt_id: UUID, outcome: str, attempt_provider: str,
                       order_id: str, org_id: UUID, checkout_session_id: str, status: str, currency: str, total: int,
                       provider: str | None, charge_id: str | None, created_by: UUID,
                       body: dict[str, Any]) -> dict[str, Any]:
    """The payment attempt (`outcome`, charged `total` by `attempt_provider`) and the new order it made, with `body`
    numbered from the order's sequence; returns that numbered body (what was stored: the same keys, in `body`'s
    order, which must already hold both number fields)."""
    found = await _INSERT_ORDER.fetchrow(session, attempt_id, org_id, checkout_session_id, attempt_provider, outcome,
                                         None, total, currency, charge_id, order_id, status, provider,
                                         json.dumps(body), created_by)
    assert found is not None
    return _numbered(body, found[0])


def _numbered(body: dict[str, Any], number: int) -> dict[str, Any]:
    """`body` as `_NUMBERED` stores it, its keys kept in place (the answer's JSON keeps `_order_body`'s order)."""
    text = str(number)
    return {**body, "order_number": text, "confirmation": {**body["confirmation"], "confirmation_number": text}}


async def set_order_body(session: AsyncConnection, org_id: UUID, order_id: str, body: dict[str, Any],
                         status: str | None = None) -> None:
    await _SET_ORDER.execute(session, org_id, order_id, json.dumps(body), status)


async def order_payment(session: AsyncConnection, org_id: UUID, order_id: str) -> UUID | None:
    """The `payment` thing of an order, if it has one."""
    statement = sa.select(orders.c.payment_thing_id).where(orders.c.org_id == org_id, orders.c.id == order_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def record_attempt(session: AsyncConnection, *, attempt_id: UUID, org_id: UUID, checkout_session_id: str,
                         provider: str, outcome: str, reason: str | None, amount: int, currency: str,
                         charge_id: str | None) -> None:
    await _INSERT_ATTEMPT.execute(session, attempt_id, org_id, checkout_session_id, provider, outcome, reason, amount,
                                  currency, charge_id)
