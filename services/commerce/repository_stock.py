"""Every SQL statement of stock reservations (`commerce.stock_reservations`, RLS by org; DDL in migrations/v0009).

A session counts what the others hold of a product under that product's advisory lock (`lock`, taken in
the transaction that writes the session's own reservation), so two sessions racing for the last unit run
one after the other and the second sees the first's hold. Held rows count until their session's
`expires_at`; sold rows count until the sale has been taken off the product's stock in the graph.
"""

from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_LOCK = sa.text("""
    SELECT pg_advisory_xact_lock(hashtextextended('commerce.stock:' || CAST(:org_id AS text) || ':' || p, 0))
      FROM unnest(CAST(:products AS text[])) AS p ORDER BY p""")

_HELD_ELSEWHERE = sa.text("""
    SELECT product_id, sum(quantity) FROM commerce.stock_reservations
     WHERE org_id = :org_id AND product_id = ANY(:products) AND checkout_session_id <> :session_id
       AND (state = 'sold' OR expires_at > clock_timestamp())
     GROUP BY product_id""")


async def lock(session: AsyncConnection, org_id: UUID, products: list[UUID]) -> None:
    """Serialise the transactions that reserve any of `products` (until this one ends), in one order."""
    await session.execute(_LOCK, {"org_id": str(org_id), "products": sorted(str(p) for p in products)})


async def held_elsewhere(session: AsyncConnection, org_id: UUID, session_id: str, products: list[UUID]
                         ) -> dict[UUID, int]:
    rows = await session.execute(_HELD_ELSEWHERE, {"org_id": org_id, "session_id": session_id, "products": products})
    return {product: int(quantity) for product, quantity in rows.all()}


async def hold(session: AsyncConnection, org_id: UUID, session_id: str, held: dict[UUID, int],
               expires_at: datetime) -> None:
    """The session holds exactly `held` (product -> quantity) until `expires_at`; nothing else."""
    await session.execute(sa.text(
        "DELETE FROM commerce.stock_reservations WHERE org_id = :org_id AND checkout_session_id = :session_id "
        "AND state = 'held' AND NOT (product_id = ANY(:products))"),
        {"org_id": org_id, "session_id": session_id, "products": list(held)})
    for product, quantity in held.items():
        await session.execute(sa.text("""
            INSERT INTO commerce.stock_reservations (org_id, checkout_session_id, product_id, quantity, state,
                                                     expires_at)
            VALUES (:org_id, :session_id, :product, :quantity, 'held', :expires_at)
            ON CONFLICT (org_id, checkout_session_id, product_id) DO UPDATE
               SET quantity = excluded.quantity, expires_at = excluded.expires_at"""),
            {"org_id": org_id, "session_id": session_id, "product": product, "quantity": quantity,
             "expires_at": expires_at})


async def release(session: AsyncConnection, org_id: UUID, session_id: str) -> None:
    """A canceled (or expired) session holds nothing."""
    await session.execute(sa.text(
        "DELETE FROM commerce.stock_reservations WHERE org_id = :org_id AND checkout_session_id = :session_id "
        "AND state = 'held'"), {"org_id": org_id, "session_id": session_id})


async def sell(session: AsyncConnection, org_id: UUID, session_id: str) -> None:
    """A completed session's holds are sold: they count until the graph's stock has been taken down."""
    await session.execute(sa.text(
        "UPDATE commerce.stock_reservations SET state = 'sold' WHERE org_id = :org_id "
        "AND checkout_session_id = :session_id"), {"org_id": org_id, "session_id": session_id})


async def taken(session: AsyncConnection, org_id: UUID, session_id: str, product_id: UUID) -> None:
    """The sale of `product_id` is off the product's stock in the graph: its sold row no longer counts."""
    await session.execute(sa.text(
        "DELETE FROM commerce.stock_reservations WHERE org_id = :org_id AND checkout_session_id = :session_id "
        "AND product_id = :product AND state = 'sold'"),
        {"org_id": org_id, "session_id": session_id, "product": product_id})
