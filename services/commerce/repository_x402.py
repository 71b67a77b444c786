"""Every SQL statement of x402's replay store.

`x402_nonces` (no RLS: what the chain publishes, global so a replay is refused in every org) is
claimed with `ON CONFLICT DO NOTHING`: the insert that wins settles. `x402_settlements` is the
org's record (RLS), written in the same transaction as the claim and updated when the chain answers.
"""

from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.commerce.models_x402 import x402_nonces, x402_settlements

NOW = sa.func.clock_timestamp()


@dataclass(frozen=True, slots=True)
class PaymentKey:
    """What the chain keys an EIP-3009 authorization by (lower-case addresses and nonce)."""

    network: str
    asset: str
    payer: str
    nonce: str

    def where(self, table: sa.Table) -> list[sa.ColumnElement[bool]]:
        return [table.c.network == self.network, table.c.asset == self.asset, table.c.payer == self.payer,
                table.c.nonce == self.nonce]


async def is_claimed(session: AsyncConnection, key: PaymentKey) -> bool:
    return (await session.execute(sa.select(sa.literal(1)).where(*key.where(x402_nonces)))).first() is not None


async def claim(session: AsyncConnection, org_id: UUID, settlement_id: UUID, key: PaymentKey, amount: int, pay_to: str,
                resource: str | None) -> bool:
    """Claim the authorization for this settlement; False when it was claimed before (a replay, or a race lost)."""
    claimed = await session.execute(insert(x402_nonces).values(
        network=key.network, asset=key.asset, payer=key.payer, nonce=key.nonce, org_id=org_id,
        settlement_id=settlement_id).on_conflict_do_nothing().returning(x402_nonces.c.settlement_id))
    if claimed.first() is None:
        return False
    await session.execute(sa.insert(x402_settlements).values(
        id=settlement_id, org_id=org_id, network=key.network, asset=key.asset, payer=key.payer, nonce=key.nonce,
        amount=amount, pay_to=pay_to.lower(), resource=resource, status="claimed"))
    return True


async def release(session: AsyncConnection, org_id: UUID, settlement_id: UUID, key: PaymentKey) -> None:
    """Forget a claim that never reached the chain (refused before broadcasting): the payer may try it again."""
    await session.execute(sa.delete(x402_settlements).where(x402_settlements.c.org_id == org_id,
                                                            x402_settlements.c.id == settlement_id))
    await session.execute(sa.delete(x402_nonces).where(*key.where(x402_nonces),
                                                       x402_nonces.c.settlement_id == settlement_id))


async def finish(session: AsyncConnection, org_id: UUID, settlement_id: UUID, *, status: str, tx_hash: str | None,
                 error_reason: str | None = None, payment_id: UUID | None = None) -> None:
    await session.execute(sa.update(x402_settlements).where(
        x402_settlements.c.org_id == org_id, x402_settlements.c.id == settlement_id,
    ).values(status=status, tx_hash=tx_hash or None, error_reason=error_reason, payment_id=payment_id,
             settled_at=NOW if status == "settled" else None))


async def get_settlement(session: AsyncConnection, org_id: UUID, key: PaymentKey) -> sa.Row | None:
    statement = sa.select(x402_settlements).where(x402_settlements.c.org_id == org_id, *key.where(x402_settlements))
    return (await session.execute(statement)).first()
