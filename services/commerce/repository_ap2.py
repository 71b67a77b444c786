"""Every SQL statement of AP2's keys, trust list, checkouts, mandates and receipts (RLS by org; every statement
names the org too). A presentation's own statements, and how concurrent ones are kept apart, are in
repository_ap2_payments.py.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(slots=True)
class KeyRow:
    role: str
    owner_id: UUID
    kid: str
    public_jwk: dict[str, Any]
    key_sealed: bytes


@dataclass(slots=True)
class CheckoutRow:
    id: UUID
    merchant_id: str
    checkout_jwt: str
    checkout_hash: str
    nonce: str
    amount: int
    currency: str
    status: str
    expires_at: datetime
    checked_out: bool = False
    acp_session_id: str | None = None  # signed for this ACP checkout session, as it stood at `acp_version`
    acp_version: int | None = None


@dataclass(slots=True)
class ReceiptRow:
    id: UUID
    checkout_id: UUID
    mandate_id: UUID
    receipt_jwt: str
    receipt: dict[str, Any]
    created_at: datetime
    kind: str = "payment"
    charge_id: str | None = None


@dataclass(slots=True)
class UsageRow:
    uses: int
    spent: dict[str, int]
    last_used_at: datetime | None


_KEY = "role, owner_id, kid, public_jwk, key_sealed"
_CHECKOUT = ("id, merchant_id, checkout_jwt, checkout_hash, nonce, amount, currency, status, expires_at, checked_out, "
             "acp_session_id, acp_version")
_RECEIPT = "id, checkout_id, mandate_id, receipt_jwt, receipt, created_at, kind, charge_id"


def _key(row: Any) -> KeyRow:
    return KeyRow(row[0], row[1], row[2], row[3], bytes(row[4]))


async def get_key(session: AsyncConnection, org_id: UUID, role: str, owner_id: UUID) -> KeyRow | None:
    row = (await session.execute(sa.text(f"""
        SELECT {_KEY} FROM commerce.ap2_keys WHERE org_id = :org_id AND role = :role AND owner_id = :owner_id
    """), {"org_id": org_id, "role": role, "owner_id": owner_id})).first()
    return _key(row) if row else None


async def insert_key(session: AsyncConnection, org_id: UUID, role: str, owner_id: UUID, kid: str,
                     public_jwk: dict[str, Any], key_sealed: bytes) -> KeyRow | None:
    """None when the key exists already (a concurrent request made it first)."""
    row = (await session.execute(sa.text(f"""
        INSERT INTO commerce.ap2_keys (org_id, role, owner_id, kid, public_jwk, key_sealed)
        VALUES (:org_id, :role, :owner_id, :kid, CAST(:jwk AS jsonb), :sealed)
        ON CONFLICT (org_id, role, owner_id) DO NOTHING RETURNING {_KEY}
    """), {"org_id": org_id, "role": role, "owner_id": owner_id, "kid": kid, "jwk": json.dumps(public_jwk),
           "sealed": key_sealed})).first()
    return _key(row) if row else None


async def public_keys(session: AsyncConnection, org_id: UUID, roles: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = (await session.execute(sa.text("""
        SELECT public_jwk FROM commerce.ap2_keys WHERE org_id = :org_id AND role = ANY(:roles) ORDER BY created_at
    """), {"org_id": org_id, "roles": list(roles)})).all()
    return [row[0] for row in rows]


async def insert_trusted(session: AsyncConnection, values: dict[str, Any]) -> datetime:
    return (await session.execute(sa.text("""
        INSERT INTO commerce.ap2_trusted_issuers (id, org_id, issuer, jwks, created_by)
        VALUES (:id, :org_id, :issuer, CAST(:jwks AS jsonb), :created_by) RETURNING created_at
    """), {**values, "jwks": json.dumps(values["jwks"])})).scalar_one()


async def trusted(session: AsyncConnection, org_id: UUID) -> list[tuple[UUID, str, dict[str, Any], datetime]]:
    rows = (await session.execute(sa.text("""
        SELECT id, issuer, jwks, created_at FROM commerce.ap2_trusted_issuers WHERE org_id = :org_id
        ORDER BY created_at
    """), {"org_id": org_id})).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def insert_checkout(session: AsyncConnection, values: dict[str, Any]) -> None:
    await session.execute(sa.text("""
        INSERT INTO commerce.ap2_checkouts (id, org_id, merchant_id, checkout_jwt, checkout_hash, nonce, amount,
                                            currency, expires_at, acp_session_id, acp_version)
        VALUES (:id, :org_id, :merchant_id, :checkout_jwt, :checkout_hash, :nonce, :amount, :currency, :expires_at,
                :acp_session_id, :acp_version)
    """), {"acp_session_id": None, "acp_version": None, **values})


async def get_checkout(session: AsyncConnection, org_id: UUID, checkout_id: UUID, *,
                       lock: bool = False) -> CheckoutRow | None:
    row = (await session.execute(sa.text(f"""
        SELECT {_CHECKOUT} FROM commerce.ap2_checkouts WHERE org_id = :org_id AND id = :id
        {"FOR UPDATE" if lock else ""}
    """), {"org_id": org_id, "id": checkout_id})).first()
    return CheckoutRow(*row) if row else None


def _usage(rows: Any) -> UsageRow:
    """Rows of (currency, count, sum, last use) as one usage."""
    last = max((row[3] for row in rows), default=None)
    return UsageRow(sum(int(row[1]) for row in rows), {row[0]: int(row[2]) for row in rows}, last)


MANDATE_DEFAULTS: dict[str, Any] = {"agent_id": None, "credential": None, "fulfills": None, "expires_at": None,
                                     "version": 2, "signed": True, "graph_pending": False, "actor_id": None,
                                     "issuer": None}


async def insert_mandate(session: AsyncConnection, values: dict[str, Any]) -> UUID:
    """The mandate's id (an existing row's when this org recorded the same credential before)."""
    return (await session.execute(sa.text("""
        INSERT INTO commerce.ap2_mandates (id, org_id, kind, mandate_type, direction, agent_id, credential_hash,
                                           claims, credential, status, fulfills, expires_at, version, signed,
                                           graph_pending, actor_id, issuer)
        VALUES (:id, :org_id, :kind, :mandate_type, :direction, :agent_id, :credential_hash, CAST(:claims AS jsonb),
                :credential, :status, :fulfills, :expires_at, :version, :signed, :graph_pending, :actor_id, :issuer)
        ON CONFLICT (org_id, direction, credential_hash) DO UPDATE SET status = commerce.ap2_mandates.status
        RETURNING id
    """), {**MANDATE_DEFAULTS, **values, "claims": json.dumps(values["claims"])})).scalar_one()


async def get_receipt(session: AsyncConnection, org_id: UUID, receipt_id: UUID) -> ReceiptRow | None:
    row = (await session.execute(sa.text(f"""
        SELECT {_RECEIPT} FROM commerce.ap2_receipts WHERE org_id = :org_id AND id = :id
    """), {"org_id": org_id, "id": receipt_id})).first()
    return ReceiptRow(*row) if row else None


@dataclass(slots=True)
class GrantedRow:
    id: UUID
    agent_id: UUID
    claims: dict[str, Any]
    credential: str
    status: str
    expires_at: datetime | None


async def get_granted(session: AsyncConnection, org_id: UUID, mandate_id: UUID) -> GrantedRow | None:
    """A mandate this org granted, locked until the transaction ends (its agent's purchases queue here)."""
    row = (await session.execute(sa.text("""
        SELECT id, agent_id, claims, credential, status, expires_at FROM commerce.ap2_mandates
        WHERE org_id = :org_id AND id = :id AND direction = 'granted' AND kind = 'open' FOR UPDATE
    """), {"org_id": org_id, "id": mandate_id})).first()
    return GrantedRow(*row) if row else None


async def granted_usage(session: AsyncConnection, org_id: UUID, mandate_id: UUID) -> UsageRow:
    """The closed mandates signed under a granted one (each counts once signed: it can be presented), but those
    the merchant definitely refused (`released`)."""
    return (await held_usage(session, org_id, [mandate_id])).get(mandate_id, _usage([]))


@dataclass(slots=True)
class ClosedRow:
    id: UUID
    agent_id: UUID
    fulfills: UUID
    mandate_type: str
    claims: dict[str, Any]
    status: str


async def get_closed_granted(session: AsyncConnection, org_id: UUID, mandate_id: UUID) -> ClosedRow | None:
    """A closed mandate this org signed for one of its agents."""
    row = (await session.execute(sa.text("""
        SELECT id, agent_id, fulfills, mandate_type, claims, status FROM commerce.ap2_mandates
        WHERE org_id = :org_id AND id = :id AND direction = 'granted' AND kind = 'closed'
    """), {"org_id": org_id, "id": mandate_id})).first()
    return ClosedRow(*row) if row else None


async def release_closed(session: AsyncConnection, org_id: UUID, mandate_id: UUID) -> bool:
    """Mark a signed closed mandate released (False: it was released already — a use is released once)."""
    return (await session.execute(sa.text("""
        UPDATE commerce.ap2_mandates SET status = 'released'
        WHERE org_id = :org_id AND id = :id AND direction = 'granted' AND kind = 'closed' AND status = 'signed'
        RETURNING id
    """), {"org_id": org_id, "id": mandate_id})).first() is not None


async def held(session: AsyncConnection, org_id: UUID, agent_id: UUID, limit: int = 50) -> list[GrantedRow]:
    """The agent's active, unexpired open mandates, newest first."""
    rows = (await session.execute(sa.text("""
        SELECT id, agent_id, claims, '' AS credential, status, expires_at FROM commerce.ap2_mandates
        WHERE org_id = :org_id AND agent_id = :agent_id AND direction = 'granted' AND kind = 'open'
        AND status = 'active' AND (expires_at IS NULL OR expires_at > clock_timestamp())
        ORDER BY created_at DESC LIMIT :limit
    """), {"org_id": org_id, "agent_id": agent_id, "limit": limit})).all()
    return [GrantedRow(*row) for row in rows]


async def held_usage(session: AsyncConnection, org_id: UUID, mandate_ids: list[UUID]) -> dict[UUID, UsageRow]:
    """`granted_usage` of each of these open mandates, in one statement (a mandate never used is absent)."""
    rows = (await session.execute(sa.text("""
        SELECT fulfills, claims -> 'payment_amount' ->> 'currency', count(*),
               sum((claims -> 'payment_amount' ->> 'amount')::bigint), max(created_at)
        FROM commerce.ap2_mandates WHERE org_id = :org_id AND fulfills = ANY(:ids) AND direction = 'granted'
        AND status <> 'released'
        GROUP BY 1, 2
    """), {"org_id": org_id, "ids": mandate_ids})).all()
    by_mandate: dict[UUID, list[Any]] = {}
    for row in rows:
        by_mandate.setdefault(row[0], []).append(row[1:])
    return {mandate_id: _usage(found) for mandate_id, found in by_mandate.items()}


async def checkout_mandates_for(session: AsyncConnection, org_id: UUID, agent_id: UUID, checkout_hash: str,
                                reference: str | None) -> tuple[list[str], bool]:
    """(the digests of the open checkout mandates under which this agent closed a checkout mandate for this checkout,
    whether `reference` is the digest of an open checkout mandate this org granted)."""
    row = (await session.execute(sa.text("""
        SELECT ARRAY(SELECT o.credential_hash FROM commerce.ap2_mandates c
                     JOIN commerce.ap2_mandates o ON o.org_id = c.org_id AND o.id = c.fulfills
                     WHERE c.org_id = :org_id AND c.agent_id = :agent_id AND c.direction = 'granted'
                     AND c.kind = 'closed' AND c.mandate_type = 'checkout' AND c.status <> 'released'
                     AND c.claims ->> 'checkout_hash' = :checkout_hash),
               EXISTS (SELECT 1 FROM commerce.ap2_mandates WHERE org_id = :org_id AND direction = 'granted'
                       AND kind = 'open' AND mandate_type = 'checkout' AND credential_hash = :reference)
    """), {"org_id": org_id, "agent_id": agent_id, "checkout_hash": checkout_hash, "reference": reference or ""})).one()
    return list(row[0]), bool(row[1])


async def revoke_granted(session: AsyncConnection, org_id: UUID, mandate_id: UUID) -> str | None:
    """The mandate's status after revoking it (None: no such granted open mandate)."""
    return (await session.execute(sa.text("""
        UPDATE commerce.ap2_mandates SET status = 'revoked'
        WHERE org_id = :org_id AND id = :id AND direction = 'granted' AND kind = 'open' RETURNING status
    """), {"org_id": org_id, "id": mandate_id})).scalar_one_or_none()
