"""The SQL of a paid AP2 checkout, in as few statements as it takes, and the org's mandates and receipts listed.

A presentation's transaction (service_ap2_present.py) runs: the checkout locked, then what checked it out and
whether the chain was refused before (`lock_checkout`; a refusal is recorded by `record_refused`),
`use_open_mandate` for each open mandate of the chain — one upsert that locks the open mandate's row and
returns its uses so far (ON CONFLICT DO UPDATE reads the latest committed row, so a purchase that waited for
the lock sees the one before it), and for the last one whether the `payment.reference` it names is an open
checkout mandate this merchant accepted — then `record_payment`, one statement storing both mandates, the
receipt, the checkout paid, every open mandate's use counted and the presentation's events staged. So a
budget or a recurrence limit holds however many purchases race.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.commerce.repository_ap2 import _CHECKOUT, _RECEIPT, MANDATE_DEFAULTS, CheckoutRow, ReceiptRow, UsageRow
from shared.runtime.outbox import Outbox, OutboxMessage

_OUTBOX = Outbox("commerce")

_STATE = sa.text("""
    SELECT (SELECT open_hash FROM commerce.ap2_receipts
            WHERE org_id = :org_id AND checkout_id = :id AND kind = 'checkout'),
           EXISTS (SELECT 1 FROM commerce.ap2_refused_chains WHERE org_id = :org_id AND chain_hash = :chain_hash)
""")


async def lock_checkout(session: AsyncConnection, org_id: UUID, checkout_id: UUID,
                        chain_hash: str | None) -> tuple[CheckoutRow, str | None, bool] | None:
    """The checkout, locked until the transaction ends; then the open checkout mandate that checked it out (its
    hash, None if none did) and whether this chain was refused here before — read by a second statement, once the
    lock is held: a statement's snapshot is taken when it starts, so one that waited for the lock would not see
    what the presentation it waited for committed (PostgreSQL re-reads the locked row, not its subqueries)."""
    row = (await session.execute(sa.text(f"""
        SELECT {_CHECKOUT} FROM commerce.ap2_checkouts WHERE org_id = :org_id AND id = :id FOR UPDATE
    """), {"org_id": org_id, "id": checkout_id})).first()
    if row is None:
        return None
    checked_out_by, refused = (await session.execute(_STATE, {"org_id": org_id, "id": checkout_id,
                                                              "chain_hash": chain_hash or ""})).one()
    return CheckoutRow(*row), checked_out_by, bool(refused)


async def record_refused(session: AsyncConnection, org_id: UUID, chain_hash: str, checkout_id: UUID,
                         reason: str | None) -> None:
    """This chain is refused here for good (a refusal is final: see migrations/v0012_ap2_refusals.py)."""
    await session.execute(sa.text("""
        INSERT INTO commerce.ap2_refused_chains (org_id, chain_hash, checkout_id, reason)
        VALUES (:org_id, :chain_hash, :checkout_id, :reason) ON CONFLICT (org_id, chain_hash) DO NOTHING
    """), {"org_id": org_id, "chain_hash": chain_hash, "checkout_id": checkout_id, "reason": reason})


_USE = sa.text("""
    WITH used AS (
        INSERT INTO commerce.ap2_open_mandates AS m (org_id, open_hash) VALUES (:org_id, :open_hash)
        ON CONFLICT (org_id, open_hash) DO UPDATE SET open_hash = m.open_hash
        RETURNING uses, spent, last_used_at)
    SELECT uses, spent, last_used_at,
           EXISTS (SELECT 1 FROM commerce.ap2_mandates WHERE org_id = :org_id AND direction = 'accepted'
                   AND kind = 'open' AND mandate_type = 'checkout' AND credential_hash = CAST(:reference AS text))
    FROM used
""")


async def use_open_mandate(session: AsyncConnection, org_id: UUID, open_hash: str,
                           reference: str | None = None) -> tuple[UsageRow, bool]:
    """Lock the open mandate's row until the transaction ends (made on first use, with no uses: what no row
    means) and read its uses so far; and whether `reference` is the hash of an open checkout mandate this merchant
    accepted (for some checkout)."""
    uses, spent, last, names_checkout_mandate = (await session.execute(
        _USE, {"org_id": org_id, "open_hash": open_hash, "reference": reference})).one()
    return UsageRow(uses, {currency: int(amount) for currency, amount in (spent or {}).items()}, last), \
        bool(names_checkout_mandate)


_MANDATE_COLUMNS = ("id, org_id, kind, mandate_type, direction, agent_id, credential_hash, claims, credential, "
                    "status, fulfills, expires_at, version, signed, graph_pending, actor_id, issuer")


def _mandate_values(prefix: str) -> str:
    return ", ".join(f"CAST(:{prefix}_claims AS jsonb)" if name == "claims" else f":{prefix}_{name}"
                     for name in _MANDATE_COLUMNS.split(", "))


_RECORD = sa.text(f"""
    WITH open_m AS (
        INSERT INTO commerce.ap2_mandates ({_MANDATE_COLUMNS}) VALUES ({_mandate_values("o")})
        ON CONFLICT (org_id, direction, credential_hash) DO UPDATE SET status = commerce.ap2_mandates.status
        RETURNING id),
    closed_m AS (
        INSERT INTO commerce.ap2_mandates ({_MANDATE_COLUMNS})
        SELECT {_mandate_values("c").replace(":c_fulfills", "open_m.id")} FROM open_m
        ON CONFLICT (org_id, direction, credential_hash) DO UPDATE SET status = commerce.ap2_mandates.status
        RETURNING id),
    receipt AS (
        INSERT INTO commerce.ap2_receipts (id, org_id, checkout_id, mandate_id, open_hash, amount, currency,
                                           receipt_jwt, receipt, kind, charge_id)
        SELECT :r_id, :org_id, :checkout_id, closed_m.id, :open_hash, :amount, :currency, :receipt_jwt,
               CAST(:receipt AS jsonb), :kind, :charge_id FROM closed_m
        RETURNING {_RECEIPT}),
    paid AS (
        UPDATE commerce.ap2_checkouts SET status = CASE WHEN :kind = 'payment' THEN 'paid' ELSE status END,
               checked_out = checked_out OR :kind = 'checkout',
               paid_at = CASE WHEN :kind = 'payment' THEN clock_timestamp() ELSE paid_at END
        WHERE org_id = :org_id AND id = :checkout_id RETURNING id),
    used AS (
        UPDATE commerce.ap2_open_mandates SET uses = uses + 1, last_used_at = clock_timestamp(),
               spent = jsonb_set(spent, ARRAY[CAST(:currency AS text)],
                                 to_jsonb(coalesce((spent ->> CAST(:currency AS text))::bigint, 0) + :amount))
        WHERE org_id = :org_id AND open_hash = ANY(CAST(:open_hashes AS text[])) AND :kind = 'payment'
        RETURNING open_hash),
    staged AS ({_OUTBOX.insert_select}
        WHERE (SELECT id FROM open_m) = CAST(:o_id AS uuid) AND (SELECT id FROM closed_m) = CAST(:c_id AS uuid)
        RETURNING id)
    SELECT open_m.id, receipt.*, (SELECT count(*) FROM paid), (SELECT count(*) FROM used),
           (SELECT count(*) FROM staged) FROM open_m, receipt
""")


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    merged = {**MANDATE_DEFAULTS, **values, "claims": json.dumps(values["claims"])}
    return {f"{prefix}_{name}": merged.get(name) for name in _MANDATE_COLUMNS.split(", ")}


async def record_payment(session: AsyncConnection, org_id: UUID, *, open_mandate: dict[str, Any],
                         closed_mandate: dict[str, Any], receipt: dict[str, Any], open_hashes: list[str],
                         events: Sequence[OutboxMessage]) -> tuple[UUID, ReceiptRow, bool]:
    """(the open mandate's id, the receipt, whether `events` were staged): both mandates, the receipt (`kind`
    payment or checkout), the checkout paid (a payment) or checked out (a checkout mandate), a use of each open
    mandate of `open_hashes` counted (a payment), and `events` staged in the outbox — only if both mandates got the
    ids they were given (the events name them): an open mandate accepted before keeps its id, and then the
    caller stages the events naming it."""
    params = {**_prefixed("o", {**open_mandate, "org_id": org_id}),
              **_prefixed("c", {**closed_mandate, "org_id": org_id}), "org_id": org_id,
              **{k: receipt.get(k) for k in ("checkout_id", "open_hash", "amount", "currency", "receipt_jwt",
                                             "charge_id")},
              "r_id": receipt["id"], "receipt": json.dumps(receipt["receipt"]), "kind": receipt.get("kind", "payment"),
              "open_hashes": open_hashes, **_OUTBOX.rows_of(events)}
    row = (await session.execute(_RECORD, params)).one()
    return row[0], ReceiptRow(*row[1:9]), bool(row[11])


_RECEIPTS = sa.text(f"""
    SELECT {_RECEIPT} FROM commerce.ap2_receipts WHERE org_id = :org_id
    AND (CAST(:before AS timestamptz) IS NULL OR created_at < :before) ORDER BY created_at DESC LIMIT :limit
""")


async def receipts(session: AsyncConnection, org_id: UUID, *, limit: int, before: datetime | None) -> list[ReceiptRow]:
    rows = await session.execute(_RECEIPTS, {"org_id": org_id, "limit": limit, "before": before})
    return [ReceiptRow(*row) for row in rows]


_MANDATES = sa.text("""
    SELECT id, kind, mandate_type, direction, agent_id, credential_hash, claims, status, fulfills, expires_at,
           version, signed, issuer, created_at
    FROM commerce.ap2_mandates WHERE org_id = :org_id
    AND (CAST(:direction AS text) IS NULL OR direction = :direction)
    AND (CAST(:agent_id AS uuid) IS NULL OR agent_id = :agent_id)
    AND (CAST(:before AS timestamptz) IS NULL OR created_at < :before)
    ORDER BY created_at DESC LIMIT :limit
""")


async def mandates(session: AsyncConnection, org_id: UUID, *, direction: str | None, agent_id: UUID | None,
                   limit: int, before: datetime | None) -> list[dict[str, Any]]:
    rows = await session.execute(_MANDATES, {"org_id": org_id, "direction": direction, "agent_id": agent_id,
                                             "limit": limit, "before": before})
    return [dict(row._mapping) for row in rows]
