"""Every SQL statement of org wallets, agents' budgets and spends (RLS by org; every statement names the org too).

The budget check and the spend it allows are one transaction: `lock_budget` takes the agent's budget
row `FOR UPDATE`, so a second sign of the same agent waits there until the first commits, and its
`spent_since` (a new statement, a new snapshot under READ COMMITTED) then counts the first's spend.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(slots=True)
class WalletRow:
    org_id: UUID
    address: str
    key_sealed: bytes
    created_at: datetime


@dataclass(slots=True)
class BudgetRow:
    agent_id: UUID
    per_call: int
    per_day: int
    asset: str | None
    updated_at: datetime


@dataclass(slots=True)
class SpendRow:
    id: UUID
    agent_id: UUID
    amount: int
    asset: str
    network: str
    pay_to: str
    nonce: str
    resource: str | None
    status: str
    tx_hash: str | None
    created_at: datetime


_WALLET = "org_id, address, key_sealed, created_at"
_BUDGET = "agent_id, per_call, per_day, asset, updated_at"
_SPEND = "id, agent_id, amount, asset, network, pay_to, nonce, resource, status, tx_hash, created_at"
DAY_WINDOW = "24 hours"


def _wallet(row: Any) -> WalletRow:
    return WalletRow(row[0], row[1], bytes(row[2]), row[3])


def _budget(row: Any) -> BudgetRow:
    return BudgetRow(row[0], int(row[1]), int(row[2]), row[3], row[4])


def _spend(row: Any) -> SpendRow:
    return SpendRow(row[0], row[1], int(row[2]), *row[3:])


async def insert_wallet(session: AsyncConnection, org_id: UUID, address: str, key_sealed: bytes,
                        created_by: UUID) -> WalletRow | None:
    """None when the org has a wallet already (a concurrent create won)."""
    row = (await session.execute(sa.text(f"""
        INSERT INTO commerce.wallets (org_id, address, key_sealed, created_by)
        VALUES (:org_id, :address, :key_sealed, :created_by)
        ON CONFLICT (org_id) DO NOTHING RETURNING {_WALLET}
    """), {"org_id": org_id, "address": address, "key_sealed": key_sealed, "created_by": created_by})).first()
    return _wallet(row) if row else None


async def get_wallet(session: AsyncConnection, org_id: UUID) -> WalletRow | None:
    row = (await session.execute(sa.text(f"SELECT {_WALLET} FROM commerce.wallets WHERE org_id = :org_id"),
                                 {"org_id": org_id})).first()
    return _wallet(row) if row else None


async def upsert_budget(session: AsyncConnection, org_id: UUID, agent_id: UUID, per_call: int, per_day: int,
                        asset: str | None, updated_by: UUID) -> BudgetRow:
    row = (await session.execute(sa.text(f"""
        INSERT INTO commerce.wallet_budgets (org_id, agent_id, per_call, per_day, asset, updated_by)
        VALUES (:org_id, :agent_id, :per_call, :per_day, :asset, :updated_by)
        ON CONFLICT (org_id, agent_id) DO UPDATE SET per_call = excluded.per_call, per_day = excluded.per_day,
            asset = excluded.asset, updated_by = excluded.updated_by, updated_at = clock_timestamp()
        RETURNING {_BUDGET}
    """), {"org_id": org_id, "agent_id": agent_id, "per_call": per_call, "per_day": per_day, "asset": asset,
           "updated_by": updated_by})).one()
    return _budget(row)


async def get_budget(session: AsyncConnection, org_id: UUID, agent_id: UUID, *, lock: bool = False) -> BudgetRow | None:
    """The agent's budget; `lock` holds its row until the transaction ends (the sign's reservation)."""
    row = (await session.execute(sa.text(f"""
        SELECT {_BUDGET} FROM commerce.wallet_budgets WHERE org_id = :org_id AND agent_id = :agent_id
        {"FOR UPDATE" if lock else ""}
    """), {"org_id": org_id, "agent_id": agent_id})).first()
    return _budget(row) if row else None


async def spent_last_day(session: AsyncConnection, org_id: UUID, agent_id: UUID) -> int:
    """Atomic units signed for the agent in the last 24 hours (failed spends too: their signatures still exist)."""
    total = (await session.execute(sa.text(f"""
        SELECT coalesce(sum(amount), 0) FROM commerce.wallet_spends
        WHERE org_id = :org_id AND agent_id = :agent_id AND created_at > now() - interval '{DAY_WINDOW}'
    """), {"org_id": org_id, "agent_id": agent_id})).scalar_one()
    return int(total)


async def insert_spend(session: AsyncConnection, values: dict[str, Any]) -> SpendRow | None:
    """None when this nonce was signed before (the same authorization is never signed twice)."""
    row = (await session.execute(sa.text(f"""
        INSERT INTO commerce.wallet_spends (id, org_id, agent_id, amount, asset, network, pay_to, nonce,
                                            valid_before, resource)
        VALUES (:id, :org_id, :agent_id, :amount, :asset, :network, :pay_to, :nonce, :valid_before, :resource)
        ON CONFLICT (org_id, nonce) DO NOTHING RETURNING {_SPEND}
    """), values)).first()
    return _spend(row) if row else None


async def record_outcome(session: AsyncConnection, org_id: UUID, spend_id: UUID, status: str, tx_hash: str | None,
                         error_reason: str | None) -> SpendRow | None:
    """The spend with its outcome; None when there is no such spend, or its outcome was recorded already."""
    row = (await session.execute(sa.text(f"""
        UPDATE commerce.wallet_spends SET status = :status, tx_hash = :tx_hash, error_reason = :error_reason,
            settled_at = clock_timestamp()
        WHERE org_id = :org_id AND id = :id AND status = 'signed' RETURNING {_SPEND}
    """), {"org_id": org_id, "id": spend_id, "status": status, "tx_hash": tx_hash,
           "error_reason": error_reason})).first()
    return _spend(row) if row else None


async def get_spend(session: AsyncConnection, org_id: UUID, spend_id: UUID) -> SpendRow | None:
    row = (await session.execute(sa.text(f"SELECT {_SPEND} FROM commerce.wallet_spends WHERE org_id = :org_id "
                                         "AND id = :id"), {"org_id": org_id, "id": spend_id})).first()
    return _spend(row) if row else None
