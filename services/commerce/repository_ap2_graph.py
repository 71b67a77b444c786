"""The SQL of the AP2 graph sync loop: mandates whose `mandate` thing (and `fulfilled` connection) is still to write.

A mandate is stored `graph_pending` in the transaction that accepts or grants it; the loop claims a
batch of every org (`FOR UPDATE SKIP LOCKED`, then a lease, as the webhook loop does: replicas share
the work, a replica that dies mid-batch delays it by one lease), writes the graph, and marks each done.
The loop's statements run with `app.commerce_worker = 'on'` (v0010's policy), its own statements only.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_AS_WORKER = sa.text("SELECT set_config('app.commerce_worker', 'on', true)")


@dataclass(slots=True)
class PendingMandate:
    id: UUID
    org_id: UUID
    kind: str
    mandate_type: str
    direction: str
    credential_hash: str
    claims: dict[str, Any]
    status: str
    fulfills: UUID | None
    agent_id: UUID | None
    actor_id: UUID | None
    issuer: str | None
    version: int
    signed: bool
    attempts: int
    thing_id: UUID | None
    open_thing_id: UUID | None
    receipt_id: UUID | None
    checkout_id: UUID | None


_CLAIM = sa.text("""
    WITH due AS (
        SELECT id FROM commerce.ap2_mandates
         WHERE graph_pending AND (graph_claimed_until IS NULL OR graph_claimed_until < clock_timestamp())
         ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED),
    claimed AS (
        UPDATE commerce.ap2_mandates m
           SET graph_claimed_until = clock_timestamp() + make_interval(secs => :lease),
               graph_attempts = graph_attempts + 1
          FROM due WHERE m.id = due.id
        RETURNING m.id, m.org_id, m.kind, m.mandate_type, m.direction, m.credential_hash, m.claims, m.status,
                  m.fulfills, m.agent_id, m.actor_id, m.issuer, m.version, m.signed, m.graph_attempts, m.thing_id,
                  m.created_at)
    SELECT c.id, c.org_id, c.kind, c.mandate_type, c.direction, c.credential_hash, c.claims, c.status, c.fulfills,
           c.agent_id, c.actor_id, c.issuer, c.version, c.signed, c.graph_attempts, c.thing_id, o.thing_id,
           r.id, r.checkout_id
      FROM claimed c
      LEFT JOIN commerce.ap2_mandates o ON o.id = c.fulfills
      LEFT JOIN commerce.ap2_receipts r ON r.mandate_id = c.id
     ORDER BY c.created_at
""")


async def claim(session: AsyncConnection, *, limit: int, lease: float) -> list[PendingMandate]:
    """Pending mandates of every org, oldest first, leased to this replica for `lease` seconds."""
    await session.execute(_AS_WORKER)
    return [PendingMandate(*row) for row in await session.execute(_CLAIM, {"limit": limit, "lease": lease})]


_DONE = sa.text("""
    UPDATE commerce.ap2_mandates m SET thing_id = coalesce(d.thing_id, m.thing_id), graph_pending = NOT d.done,
           graph_claimed_until = NULL
      FROM unnest(CAST(:ids AS uuid[]), CAST(:things AS uuid[]), CAST(:done AS boolean[])) AS d(id, thing_id, done)
     WHERE m.id = d.id
""")


async def record(session: AsyncConnection, outcomes: list[tuple[UUID, UUID | None, bool]]) -> None:
    """Each (mandate, its thing if written, done): done ones leave the queue, the others are tried again later (one
    statement for the batch)."""
    await session.execute(_AS_WORKER)
    if outcomes:
        ids, things, done = zip(*outcomes, strict=True)
        await session.execute(_DONE, {"ids": list(ids), "things": list(things), "done": list(done)})


async def pending(session: AsyncConnection, org_id: UUID) -> int:
    """How many of the org's mandates still wait for their things (tests and health)."""
    return (await session.execute(sa.text(
        "SELECT count(*) FROM commerce.ap2_mandates WHERE org_id = :org_id AND graph_pending"),
        {"org_id": org_id})).scalar_one()
