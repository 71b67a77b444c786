"""Counting live things against the organization's quota, through tenancy over the bus, exactly.

The metric (`settings.graph_things_quota`, default `things`) is an org-registered quota: an
org that has not set one is unlimited (tenancy then reserves nothing). A soft delete gives the
unit back and a restore takes it again, so the quota bounds live things.

Adding things takes units from a lease, never consume-and-hope (`quota_leases`):
1. `reserve` before the graph's transaction opens: the units come from this replica's lease for
   the org (tenancy is asked only for a new lease: a block held until settled or expired, counted
   against the limit while it lives);
2. in the transaction that inserts the things, a `quota_pending` row (lease, units used) commits
   with them (`counted_under`: written by the insert statement itself; `hold_in` for a restore);
3. `settle` after the commit with the units really used (after a failure, none): the lease takes
   back what was not used; a lease used up, past its window, or short (near the limit) and idle is
   settled with tenancy with the sum of its committed rows, which then go.
A graph that dies before its commit leaves a lease nobody settles: it expires
(`graph_quota_reservation_ttl`) and stops counting. One that dies after commits leaves its
pending rows: once the lease has expired, no replica adds to it any more, and `Settler` (on any
replica, at start and periodically) settles their sum. Settling is idempotent in tenancy, so
settling twice is harmless. Usage is therefore exactly the live things once leases are settled or
expired, under kills and under concurrent creates alike.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from uuid import UUID

from services.graph import repository_quota as repo
from services.graph.quota_leases import Lease, Leases
from services.graph.repository import QuotaUse
from shared.contracts.tenancy import QUOTA_RELEASE, QUOTA_RESERVE, QUOTA_SETTLE, QuotaChange, QuotaNotFound
from shared.kernel.errors import NotFound
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hold:
    """Units one create took from a lease; `lease` None: nothing held (no quota check, or nothing new)."""

    lease: Lease | None
    amount: int


NOTHING = Hold(None, 0)
_LEASES: dict[int, Leases] = {}


def leases_of(runtime: ServiceRuntime) -> Leases:
    """This replica's leases (one registry per runtime, created on first use)."""
    found = _LEASES.get(id(runtime))
    if found is None:
        found = _LEASES[id(runtime)] = Leases(
            lambda org_id, amount: _acquire(runtime, org_id, amount), lambda lease: _settle_lease(runtime, lease)
        )
    return found


def forget_leases(runtime: ServiceRuntime) -> None:
    _LEASES.pop(id(runtime), None)


async def reserve(ctx: WorkContext, amount: int) -> Hold:
    """Take `amount` units or raise tenancy's `QuotaExceeded` (nothing is held then)."""
    if not ctx.runtime.settings.graph_things_quota or amount <= 0:
        return NOTHING
    return Hold(await leases_of(ctx.runtime).take(ctx.auth.org_id, amount), amount)


async def _acquire(runtime: ServiceRuntime, org_id: UUID, amount: int) -> Lease:
    """A new lease from tenancy, asked as the graph itself (`quotas:consume` grant): a block if it fits, else
    what is left down to `amount`; refused (`QuotaExceeded`) when not even that fits."""
    settings = runtime.settings
    block = max(amount, settings.graph_quota_lease_units)
    ttl = settings.graph_quota_reservation_ttl
    reservation = await runtime.background(org_id).call(
        QUOTA_RESERVE, {"metric": settings.graph_things_quota, "amount": block, "at_least": amount, "ttl_seconds": ttl}
    )
    use_until = time.monotonic() + min(settings.graph_quota_lease_seconds, ttl / 2)
    return Lease(org_id, reservation.id, reservation.amount, reservation.expires_at, use_until,
                 short=reservation.id is not None and reservation.amount < block)


def counted_under(tx: WorkContext, hold: Hold) -> QuotaUse | None:
    """What the insert of a create's things records them under (its `quota_pending` row, written by the insert
    itself: no statement of its own), or None when nothing is counted."""
    lease = hold.lease
    if lease is None or lease.reservation_id is None:
        return None
    return QuotaUse(lease.reservation_id, tx.auth.actor_id, lease.expires_at)


async def hold_in(tx: WorkContext, hold: Hold, used: int) -> None:
    """In the transaction that adds the things: the lease's use, to count once the lease is settled."""
    lease = hold.lease
    if lease is not None and lease.reservation_id is not None and used:
        await repo.add_pending(tx.session, lease.reservation_id, tx.auth.org_id, tx.auth.actor_id, used,
                               lease.expires_at)


async def settle(ctx: WorkContext, hold: Hold, used: int, *, committed: bool = True) -> None:
    """The create's transaction ended: `used` of its units are the lease's for good (none when it did not commit).

    A lease settled now (used up, past its window, or short and idle) that cannot be settled (tenancy
    unreachable) is logged: its pending rows are settled by the `Settler` once it expired.
    """
    if hold.lease is None:
        return
    await leases_of(ctx.runtime).finish(hold.lease, hold.amount, used if committed else 0)


async def _settle_lease(runtime: ServiceRuntime, lease: Lease) -> None:
    """Count the committed rows of a closed, idle lease with tenancy (the rest of the block goes back)."""
    try:
        async with runtime.db.transaction() as session:
            used = await repo.used_of(session, lease.reservation_id)
        await _settle_one(runtime, lease.org_id, lease.reservation_id, used)
        async with runtime.db.transaction() as session:
            await repo.remove_pending(session, [lease.reservation_id])
    except Exception:
        log.exception("could not settle quota lease %s of org %s", lease.reservation_id, lease.org_id)


async def _settle_one(runtime: ServiceRuntime, org_id: UUID, reservation_id: UUID, used: int) -> None:
    try:
        await runtime.background(org_id).call(QUOTA_SETTLE, {"reservation_id": reservation_id, "used": used})
    except NotFound:  # tenancy forgot it (its quota was deleted): nothing left to count
        log.warning("quota reservation %s of org %s is gone; not settled", reservation_id, org_id)


async def give_back(ctx: WorkContext, amount: int) -> None:
    """Return units a delete freed, once the delete has committed.

    This replica's lease for the org is settled first, so the units its creates used are counted
    before one goes back. A unit that cannot be returned (tenancy unreachable) leaves the count one
    too high: the org may create fewer things, never more. The graph's work stands either way, so
    that is logged rather than raised over a committed write.
    """
    metric = ctx.runtime.settings.graph_things_quota
    if not metric or amount <= 0:
        return
    leases = leases_of(ctx.runtime)
    lease = leases.current(ctx.auth.org_id)
    if lease is not None and lease.reservation_id is not None:
        await leases.retire(lease)
    try:
        await ctx.call(QUOTA_RELEASE, QuotaChange(metric=metric, amount=amount))
    except NotFound as error:
        if error.code != QuotaNotFound.code:
            log.exception("could not give %d %s quota unit(s) back to org %s", amount, metric, ctx.auth.org_id)
    except Exception:
        log.exception("could not give %d %s quota unit(s) back to org %s", amount, metric, ctx.auth.org_id)


class Settler:
    """Settles the leases nobody else will: this replica's past their window (periodically, and all of them when it
    stops, so their unused units go back at once), and any replica's whose tenancy reservation expired with
    committed rows unsettled (the holder died after a commit, or tenancy did not answer)."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="graph-quota-settler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await leases_of(self.runtime).retire_all(expired_only=False)
        forget_leases(self.runtime)

    async def _loop(self) -> None:
        interval = self.runtime.settings.graph_quota_settle_interval
        while True:
            try:
                await leases_of(self.runtime).retire_all(expired_only=True)
                await self.settle_pending(0.0)
            except Exception:
                log.exception("graph quota settler")
            await asyncio.sleep(interval)

    async def settle_pending(self, older_than: float) -> int:
        """Settle the leases whose reservation expired `older_than` seconds ago or more; how many were settled."""
        async with self.runtime.db.transaction() as session:
            rows = await repo.expired_leases(session, older_than)
        done = []
        for row in rows:
            try:
                await _settle_one(self.runtime, row.org_id, row.reservation_id, int(row.used))
            except Exception:
                log.exception("could not settle quota lease %s of org %s", row.reservation_id, row.org_id)
                continue
            done.append(row.reservation_id)
        if done:
            async with self.runtime.db.transaction() as session:
                await repo.remove_pending(session, done)
        return len(done)
