"""Every SQL statement of discount codes (`commerce.discounts`, RLS by org; DDL in migrations/v0009).

All run in the caller's org transaction and name its org. A code is found by `code_key` (lower case). A
redemption is one conditional UPDATE (`redeem`): of two completes racing for a code's last redemption, the
second finds the limit reached and changes nothing.
"""

import json
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = ("id, code, name, kind, percent_off, amount_off, currency, starts_at, ends_at, max_redemptions, "
            "times_redeemed, min_subtotal, product_ids, active, created_at, updated_at")

DiscountRow = dict[str, Any]
"""A discount's columns by name (`shared.contracts.commerce.discounts.Discount`'s fields)."""


def _rows(result: Any) -> list[DiscountRow]:
    return [dict(row) for row in result.mappings()]


async def insert(session: AsyncConnection, values: dict[str, Any]) -> DiscountRow | None:
    """The new discount; None when the org already has the code (any case)."""
    statement = sa.text(f"""
        INSERT INTO commerce.discounts (id, org_id, code, code_key, name, kind, percent_off, amount_off, currency,
                                        starts_at, ends_at, max_redemptions, min_subtotal, product_ids, created_by)
        VALUES (:id, :org_id, :code, lower(:code), :name, :kind, :percent_off, :amount_off, :currency, :starts_at,
                :ends_at, :max_redemptions, :min_subtotal, CAST(:product_ids AS jsonb), :created_by)
        ON CONFLICT (org_id, code_key) DO NOTHING
        RETURNING {_COLUMNS}""")
    found = _rows(await session.execute(statement, {**values, "product_ids": json.dumps(values["product_ids"])}))
    return found[0] if found else None


async def update(session: AsyncConnection, org_id: UUID, code: str, changes: dict[str, Any]) -> DiscountRow | None:
    sets = ", ".join(f"{name} = :{name}" for name in changes)
    statement = sa.text(f"""
        UPDATE commerce.discounts SET {sets + ', ' if sets else ''}updated_at = clock_timestamp()
         WHERE org_id = :org_id AND code_key = lower(:code) RETURNING {_COLUMNS}""")
    found = _rows(await session.execute(statement, {**changes, "org_id": org_id, "code": code}))
    return found[0] if found else None


async def by_codes(session: AsyncConnection, org_id: UUID, codes: list[str]) -> dict[str, DiscountRow]:
    """The org's discounts among `codes`, by lower-case code."""
    if not codes:
        return {}
    statement = sa.text(f"SELECT {_COLUMNS} FROM commerce.discounts WHERE org_id = :org_id AND "
                        "code_key = ANY(:codes)")
    rows = _rows(await session.execute(statement, {"org_id": org_id, "codes": [c.lower() for c in codes]}))
    return {row["code"].lower(): row for row in rows}


async def page(session: AsyncConnection, org_id: UUID, limit: int) -> list[DiscountRow]:
    statement = sa.text(f"SELECT {_COLUMNS} FROM commerce.discounts WHERE org_id = :org_id ORDER BY code_key "
                        "LIMIT :limit")
    return _rows(await session.execute(statement, {"org_id": org_id, "limit": limit}))


async def redeem(session: AsyncConnection, org_id: UUID, discount_id: UUID) -> bool:
    """Count one redemption, unless the discount is inactive, over its limit or past its end."""
    statement = sa.text("""
        UPDATE commerce.discounts SET times_redeemed = times_redeemed + 1, updated_at = clock_timestamp()
         WHERE org_id = :org_id AND id = :id AND active
           AND (max_redemptions IS NULL OR times_redeemed < max_redemptions)
           AND (ends_at IS NULL OR ends_at > clock_timestamp())
        RETURNING 1""")
    return (await session.execute(statement, {"org_id": org_id, "id": discount_id})).first() is not None
