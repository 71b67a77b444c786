"""Counting live things against the organization's quota, through tenancy over the bus, exactly.

The metric (`settings.graph_things_quota`, default `things`) is an org-registered quota: an
org that has not set one is unlimited (tenancy then reserves nothing). A soft delete gives the
unit back and a restore takes it again, so the quota bounds live things.

Adding things is a reservation, never a consume-and-hope:
1. `reserve` before the graph's transaction opens: tenancy holds the units (or refuses them),
   and a held unit counts as used until it is settled or expires;
2. `hold_in` the transaction that inserts the things: a `quota_pending` row commits with them;
3. `settle` after the commit with the units really used (after a failure, with none): tenancy
   counts them once, and the pending row goes.
A graph that dies before its commit leaves a reservation nobody settles: it expires
(`graph_quota_reservation_ttl`) and stops counting. One that dies after the commit leaves its
pending row: `Settler` settles it at the next start (and periodically). Settling is idempotent
in tenancy, so settling twice is harmless. Usage is therefore exactly the live things once
reservations are settled or expired, under kills and under concurrent creates alike.
"""

import asyncio
import logging
from dataclasses import dataclass
from uuid import UUID

from services.graph import repository_quota as repo
from shared.contracts.tenancy import QUOTA_RELEASE, QUOTA_RESERVE, QUOTA_SETTLE, QuotaChange, QuotaNotFound
from shared.kernel.errors import NotFound
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hold:
    """Units tenancy holds for one create; `reservation_id` None: nothing held (no quota, or nothing new)."""

    reservation_id: UUID | None
    amount: int


NOTHING = Hold(None, 0)


async def reserve(ctx: WorkContext, amount: int) -> Hold:
    """Hold `amount` units or raise tenancy's `QuotaExceeded` (nothing is held then)."""
    settings = ctx.runtime.settings
    metric = settings.graph_things_quota
    if not metric or amount <= 0:
        return NOTHING
    reservation = await ctx.call(
        QUOTA_RESERVE, {"metric": metric, "amount": amount, "ttl_seconds": settings.graph_quota_reservation_ttl}
    )
    return Hold(reservation.id, amount)


async def hold_in(tx: WorkContext, hold: Hold, used: int) -> None:
    """In the transaction that adds the things: the settlement to make once it committed."""
    if hold.reservation_id is not None:
        await repo.add_pending(tx.session, hold.reservation_id, tx.auth.org_id, tx.auth.actor_id, used)


async def settle(ctx: WorkContext, hold: Hold, used: int, *, committed: bool = True) -> None:
    """Tell tenancy how many of the held units the work used (0 when it did not commit), then forget it.

    A settle that cannot be made now (tenancy unreachable) is logged: an uncommitted create's
    reservation expires by itself, a committed one's pending row is settled by the `Settler`.
    """
    if hold.reservation_id is None:
        return
    try:
        await _settle_one(ctx, hold.reservation_id, used if committed else 0)
        if committed:
            async with ctx.runtime.db.transaction() as session:
                await repo.remove_pending(session, [hold.reservation_id])
    except Exception:
        log.exception("could not settle quota reservation %s of org %s", hold.reservation_id, ctx.auth.org_id)


async def _settle_one(ctx: WorkContext, reservation_id: UUID, used: int) -> None:
    try:
        await ctx.call(QUOTA_SETTLE, {"reservation_id": reservation_id, "used": used})
    except NotFound:  # tenancy forgot it (its quota was deleted): nothing left to count
        log.warning("quota reservation %s of org %s is gone; not settled", reservation_id, ctx.auth.org_id)


async def give_back(ctx: WorkContext, amount: int) -> None:
    """Return units a delete freed, once the delete has committed.

    A unit that cannot be returned (tenancy unreachable) leaves the count one too high: the org
    may create fewer things, never more. The graph's work stands either way, so that is logged
    rather than raised over a committed write.
    """
    metric = ctx.runtime.settings.graph_things_quota
    if not metric or amount <= 0:
        return
    try:
        await ctx.call(QUOTA_RELEASE, QuotaChange(metric=metric, amount=amount))
    except NotFound as error:
        if error.code != QuotaNotFound.code:
            log.exception("could not give %d %s quota unit(s) back to org %s", amount, metric, ctx.auth.org_id)
    except Exception:
        log.exception("could not give %d %s quota unit(s) back to org %s", amount, metric, ctx.auth.org_id)


class Settler:
    """Settles the pending rows nobody settled: at start (the graph died after a commit), then periodically."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="graph-quota-settler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        settings = self.runtime.settings
        older_than = 0.0  # at start: every row left over is a dead replica's (or settled twice, harmlessly)
        while True:
            try:
                await self.settle_pending(older_than)
            except Exception:
                log.exception("graph quota settler")
            older_than = settings.graph_quota_settle_interval
            await asyncio.sleep(settings.graph_quota_settle_interval)

    async def settle_pending(self, older_than: float) -> int:
        """Settle the pending rows older than `older_than` seconds; how many were settled."""
        async with self.runtime.db.transaction() as session:
            rows = await repo.stale_pending(session, older_than)
        done = []
        for row in rows:
            ctx = self.runtime.background(row.org_id, on_behalf_of=row.actor_id)
            try:
                await _settle_one(ctx, row.reservation_id, row.used)
            except Exception:
                log.exception("could not settle quota reservation %s of org %s", row.reservation_id, row.org_id)
                continue
            done.append(row.reservation_id)
        if done:
            async with self.runtime.db.transaction() as session:
                await repo.remove_pending(session, done)
        return len(done)
