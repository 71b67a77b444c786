"""Every SQL statement of x402 prices (`commerce.x402_prices`, RLS by org) and the sellers' directory.

A caller's statements run in its org's transaction and name its org (RLS backs them up). The one
keyless read, `seller_org`, looks a slug up in `x402_sellers` (no RLS: slug and id only); the price
itself is then read in that org's own transaction.
"""

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = ("org_id, resource, method, amount, asset, network, pay_to, asset_name, asset_version, max_timeout_seconds, "
            "description, mime_type, updated_at")


PriceRow = dict[str, Any]
"""A price's columns by name (`shared.contracts.commerce.x402.Price`'s fields, less the slug)."""


def _rows(result: Any) -> list[PriceRow]:
    return [dict(row) for row in result.mappings()]


_UPSERT = sa.text(f"""
    INSERT INTO commerce.x402_prices (org_id, resource, method, amount, asset, network, pay_to, asset_name,
                                      asset_version, max_timeout_seconds, description, mime_type, updated_by)
    VALUES (:org_id, :resource, :method, :amount, :asset, :network, :pay_to, :asset_name, :asset_version,
            :max_timeout_seconds, :description, :mime_type, :updated_by)
    ON CONFLICT (org_id, resource) DO UPDATE SET
        method = excluded.method, amount = excluded.amount, mime_type = excluded.mime_type, asset = excluded.asset,
        network = excluded.network, pay_to = excluded.pay_to,
        asset_name = excluded.asset_name, asset_version = excluded.asset_version,
        max_timeout_seconds = excluded.max_timeout_seconds, description = excluded.description,
        updated_by = excluded.updated_by, updated_at = clock_timestamp()
    RETURNING {_COLUMNS}
""")


async def upsert(session: AsyncConnection, values: dict[str, Any]) -> PriceRow:
    return _rows(await session.execute(_UPSERT, values))[0]


async def matching(session: AsyncConnection, org_id: UUID, resource: str, route: str | None) -> PriceRow | None:
    """The price of a concrete path, else of the route template it matched (the path's own price wins)."""
    found = _rows(await session.execute(sa.text(
        f"SELECT {_COLUMNS} FROM commerce.x402_prices WHERE org_id = :org_id AND resource IN (:resource, :route) "
        "ORDER BY resource = :resource DESC LIMIT 1"),
        {"org_id": org_id, "resource": resource, "route": route or resource}))
    return found[0] if found else None


async def page(session: AsyncConnection, org_id: UUID, limit: int) -> list[PriceRow]:
    return _rows(await session.execute(sa.text(
        f"SELECT {_COLUMNS} FROM commerce.x402_prices WHERE org_id = :org_id ORDER BY resource LIMIT :limit"),
        {"org_id": org_id, "limit": limit}))


async def delete(session: AsyncConnection, org_id: UUID, resource: str) -> PriceRow | None:
    found = _rows(await session.execute(sa.text(
        f"DELETE FROM commerce.x402_prices WHERE org_id = :org_id AND resource = :resource RETURNING {_COLUMNS}"),
        {"org_id": org_id, "resource": resource}))
    return found[0] if found else None


async def remember_seller(session: AsyncConnection, org_id: UUID, slug: str) -> None:
    """The org's slug in the directory (slugs never change in tenancy, so a known org is left as it is)."""
    await session.execute(sa.text(
        "INSERT INTO commerce.x402_sellers (org_id, slug) VALUES (:org_id, :slug) ON CONFLICT DO NOTHING"),
        {"org_id": org_id, "slug": slug})


async def seller_slug(session: AsyncConnection, org_id: UUID) -> str | None:
    return (await session.execute(sa.text("SELECT slug FROM commerce.x402_sellers WHERE org_id = :org_id"),
                                  {"org_id": org_id})).scalar_one_or_none()


async def seller_org(session: AsyncConnection, org: str) -> tuple[UUID, str] | None:
    """The selling org named by its slug (or its id) in a paid URL."""
    column = "org_id::text" if len(org) == 36 and org.count("-") == 4 else "slug"
    row = (await session.execute(sa.text(f"SELECT org_id, slug FROM commerce.x402_sellers WHERE {column} = :org"),
                                 {"org": org})).first()
    return (row[0], row[1]) if row else None
