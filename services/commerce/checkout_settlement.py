"""A sale's graph side, after the answer: done once, never lost, retried (what it writes: checkout_ontology.py).

The pay transaction queues a settlement beside the order (`repository_settlement.queue`), so a sale
without one cannot exist. Right after the answer, the replica that answered runs it (`soon`); if that try
fails (the graph unavailable, a crash), every replica's loop takes pending settlements whose time came
(`GRACE` after the sale, then backoff) under a lease. A settlement: the buyer (`external_agent`), the
`payment` thing with its outcome, the `transacted` connections, the stock taken down and the sold
reservations dropped; then one transaction ends it and, only if it was still pending, sets the order's
payment thing and emits the `payment_event` (exactly once). The graph writes are idempotent (idempotency
keys; the connections are written with the payment thing, so a retry never writes them twice).
"""

import asyncio
import logging
import random
from datetime import UTC, datetime
from typing import Any

from services.commerce import (
    checkout_ontology as ontology,
    repository_checkout as sessions,
    repository_settlement as repo,
    repository_stock as stock,
)
from services.commerce.models_checkout import SessionRow
from shared.kernel.envelope import Envelope
from shared.runtime.context import WorkContext
from shared.runtime.rounds import PerReplica, Rounds
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)
GRACE = 10.0
"""Seconds a new settlement is left to the replica that answered before any loop may take it."""
_BATCH = 16
_POLL = 2.0
_LEASE = 60.0
_TASKS: set[asyncio.Task[None]] = set()


Settlement = repo.Settlement


async def queue(tx: WorkContext, row: SessionRow, order_id: str, payment_status: str, **details: Any) -> Settlement:
    """In the pay transaction: the sale's settlement, pending."""
    details["processedAt"] = int(datetime.now(UTC).timestamp() * 1000)
    queued = Settlement(row.org_id, row.id, order_id, tx.auth.actor_id, payment_status, details, 0)
    await repo.queue(tx.session, queued, GRACE)
    return queued


def soon(ctx: WorkContext, row: SessionRow, queued: Settlement) -> None:
    """After the pay transaction committed: settle in the background, as the answer goes out."""
    task = asyncio.get_running_loop().create_task(run(ctx.runtime, queued, ctx.envelope, row))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def run(runtime: ServiceRuntime, settlement: Settlement, cause: Envelope | None = None,
              row: SessionRow | None = None) -> None:
    """One try (`row`: the session as the pay transaction wrote it, else read here)."""
    org_id, session_id = settlement.org_id, settlement.checkout_session_id
    ctx = runtime.background(org_id, cause=cause, on_behalf_of=settlement.actor_id)
    try:
        if row is None:
            async with ctx.transaction() as tx:
                row = await sessions.get_session(tx.session, org_id, session_id)
            assert row is not None, "a settlement's session exists (same transaction)"
        await _settle(ctx, row, settlement)
    except Exception:
        delay = min(3600.0, 2.0 * 2 ** settlement.attempts) * random.uniform(0.5, 1.0)
        log.exception("acp: settlement of checkout %s failed (attempt %d); again in %.0f s", session_id,
                      settlement.attempts + 1, delay)
        try:
            async with ctx.transaction() as tx:
                await repo.retry(tx.session, org_id, session_id, delay)
        except Exception:
            log.exception("acp: settlement of checkout %s not rescheduled; its lease will run out", session_id)


async def _settle(ctx: WorkContext, row: SessionRow, settlement: repo.Settlement) -> None:
    status, details = settlement.payment_status, settlement.details
    if row.status == "canceled":
        status = "failed"  # a purchase order canceled before it settled
    buyer_id = await ontology.buyer(ctx)
    payment_id = await ontology.payment(ctx, row, buyer_id, status, **details)
    taken = await ontology.take_stock(ctx, row)
    async with ctx.transaction() as tx:  # the session locked first: a cancel runs wholly before or after this
        finish = await repo.finish(tx.session, row.org_id, row.id, payment_id)
        for product in taken:
            await stock.taken(tx.session, row.org_id, row.id, product)
        if finish.finished:
            await ontology.payment_event(tx, row, status, payment_id, orderId=settlement.order_id, **details)
    if finish.session_status == "canceled" and status != "failed":  # canceled while this ran
        await ontology.settle_payment(ctx, row, payment_id, "failed")


class SettlementLoop(Rounds):
    """Each replica's loop over pending settlements of every org whose time came."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        super().__init__("commerce-settlements", batch=_BATCH, poll=_POLL)
        self.runtime = runtime

    async def round(self) -> int:
        async with self.runtime.db.transaction() as session:
            due = await repo.due(session, limit=_BATCH, lease=_LEASE)
        await asyncio.gather(*(run(self.runtime, settlement) for settlement in due))
        return len(due)


LOOPS = PerReplica(SettlementLoop)
start = LOOPS.start


async def stop(runtime: ServiceRuntime) -> None:
    await LOOPS.stop(runtime)
    await asyncio.gather(*list(_TASKS), return_exceptions=True)
