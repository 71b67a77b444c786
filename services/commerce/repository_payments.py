"""Every SQL statement of the Delegate Payment vault (`commerce.vault_tokens`), in the caller's org transaction.

A token is spent by `spend`: one conditional UPDATE that only matches an unspent, unexpired token of
this session, currency and allowance, so of two charges racing for one token exactly one gets the row
(the other waits on its lock, re-reads it spent, and matches nothing). The reason a charge was refused
is read afterwards (`get`), never guessed before the write.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.runtime.sql import Sql

_COLUMNS = ("id, org_id, provider, reason, max_amount, currency, checkout_session_id, merchant_id, expires_at, display,"
            " metadata, created_by, created_at, charged_at, charge_id, charged_amount, charge_key")


@dataclass(slots=True)
class NewVaultToken:
    """A token to store, in the table's column order (what a stored row starts with)."""

    id: str
    org_id: UUID
    provider: str
    reason: str
    max_amount: int
    currency: str
    checkout_session_id: str
    merchant_id: str
    expires_at: datetime
    display: dict[str, Any]
    metadata: dict[str, str]
    created_by: UUID


@dataclass(slots=True)
class VaultTokenRow(NewVaultToken):
    """A stored vault token, in the table's column order."""

    created_at: datetime
    charged_at: datetime | None
    charge_id: str | None
    charged_amount: int | None
    charge_key: str | None


# A delegated payment's insert and a complete's spend run on the driver (shared/runtime/sql.py).
_INSERT = Sql(f"""
    INSERT INTO commerce.vault_tokens (id, org_id, provider, reason, max_amount, currency, checkout_session_id,
                                       merchant_id, expires_at, display, metadata, created_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12)
    RETURNING {_COLUMNS}
""")

_GET = sa.text(f"SELECT {_COLUMNS} FROM commerce.vault_tokens WHERE org_id = :org_id AND id = :id")

_SPEND = Sql(f"""
    UPDATE commerce.vault_tokens
       SET charged_at = clock_timestamp(), charge_id = $3, charged_amount = $4, charge_key = $5
     WHERE org_id = $1 AND id = $2 AND charged_at IS NULL AND expires_at > clock_timestamp()
       AND checkout_session_id = $6 AND currency = $7 AND max_amount >= $4
    RETURNING {_COLUMNS}
""")


async def insert(session: AsyncConnection, token: NewVaultToken) -> VaultTokenRow:
    values = [getattr(token, name) for name in NewVaultToken.__dataclass_fields__]
    values[9], values[10] = json.dumps(token.display), json.dumps(token.metadata)
    row = await _INSERT.fetchrow(session, *values)
    assert row is not None
    return VaultTokenRow(*row)


async def get(session: AsyncConnection, org_id: UUID, token_id: str) -> VaultTokenRow | None:
    row = (await session.execute(_GET, {"org_id": org_id, "id": token_id})).first()
    return VaultTokenRow(*row) if row else None


async def spend(session: AsyncConnection, org_id: UUID, token_id: str, *, amount: int, currency: str,
                checkout_session_id: str, charge_id: str, charge_key: str) -> VaultTokenRow | None:
    """The token, now charged `amount`; None when it may not pay this (spent, expired, other session, too much)."""
    row = await _SPEND.fetchrow(session, org_id, token_id, charge_id, amount, charge_key, checkout_session_id, currency)
    return VaultTokenRow(*row) if row else None
