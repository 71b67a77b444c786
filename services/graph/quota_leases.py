"""Quota leases: a block of an org's `things` units that one graph replica holds and counts creates against locally.

Asking tenancy for every create cost a bus round trip and two of its transactions per create. A
replica instead reserves a block (`graph_quota_lease_units`) per org, takes units from it with no
I/O, and settles the block once: when it is used up, when its use window ends
(`graph_quota_lease_seconds`, at most half the reservation's TTL), or when the replica stops. While
the lease lives, tenancy counts its whole block against the limit (as `reserved`, never as `used`),
so replicas together can never take more than the limit; what a lease's creates really used is
counted (`used`) when it is settled, and the rest goes back.

Near the limit tenancy grants less than asked (down to what the create needs): such a *short* lease
is settled as soon as no create is using it, so its unused units are free again at once, as the
per-create reservations were. An org without the quota gets an *unlimited* lease: nothing to
count, no tenancy round trip until its window ends (a quota newly set on the org therefore counts
this replica's creates from at most one window later).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


@dataclass(eq=False, slots=True)
class Lease:
    """A block of units (`reservation_id` None: unlimited, nothing to count) usable until `use_until` (monotonic)."""

    org_id: UUID
    reservation_id: UUID | None
    amount: int
    expires_at: datetime | None
    use_until: float
    short: bool
    taken: int = 0
    in_flight: int = 0
    open: bool = True
    settled: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def fits(self, amount: int) -> bool:
        return self.open and time.monotonic() < self.use_until and (
            self.reservation_id is None or self.taken + amount <= self.amount
        )


Acquire = Callable[[UUID, int], Awaitable[Lease]]
"""Ask tenancy for a lease of the org holding at least the given units (raises `QuotaExceeded`)."""
Settle = Callable[[Lease], Awaitable[None]]
"""Tell tenancy what a closed, idle lease's creates used (the unused rest goes back)."""


class Leases:
    """One replica's leases, one per org; `take` a create's units, `finish` once its transaction ended."""

    def __init__(self, acquire: Acquire, settle: Settle) -> None:
        self._acquire = acquire
        self._settle = settle
        self._leases: dict[UUID, Lease] = {}
        self._locks: dict[UUID, asyncio.Lock] = {}

    async def take(self, org_id: UUID, amount: int) -> Lease:
        """A lease holding `amount` more units for this create: the org's current one, or a new one."""
        lease = self._leases.get(org_id)
        if lease is None or not lease.fits(amount):
            lock = self._locks.setdefault(org_id, asyncio.Lock())
            async with lock:  # one tenancy round trip per org at a time; the others then take from its lease
                lease = self._leases.get(org_id)
                if lease is None or not lease.fits(amount):
                    if lease is not None:  # used up or past its window: settled once its creates are done
                        await self.retire(lease, wait=lease.short)  # near the limit, its rest must be free first
                    lease = await self._acquire(org_id, amount)
                    self._leases[org_id] = lease
        lease.taken += amount
        lease.in_flight += 1
        lease.idle.clear()
        return lease

    async def finish(self, lease: Lease, amount: int, used: int) -> None:
        """A create's transaction ended having used `used` of its `amount` units (0 if it did not commit)."""
        lease.taken -= amount - used
        lease.in_flight -= 1
        if lease.in_flight:
            return
        lease.idle.set()
        if lease.short:
            self._close(lease)
        if not lease.open:  # the last create on a closed lease settles it
            await self._settle_once(lease)

    async def retire(self, lease: Lease, *, wait: bool = True) -> None:
        """Close the lease to new creates and settle it once they are done: now (`wait`, after waiting for them),
        or by the last of them to finish."""
        self._close(lease)
        if lease.in_flight and wait:
            await lease.idle.wait()
        await self._settle_once(lease)

    def _close(self, lease: Lease) -> None:
        if self._leases.get(lease.org_id) is lease:
            del self._leases[lease.org_id]
        lease.open = False

    async def _settle_once(self, lease: Lease) -> None:
        if lease.settled or lease.in_flight:
            return
        lease.settled = True
        if lease.reservation_id is not None:
            await self._settle(lease)

    async def retire_all(self, *, expired_only: bool) -> int:
        """Settle the leases past their window (or every lease, waiting for their creates: the replica stops)."""
        now = time.monotonic()
        due = [lease for lease in self._leases.values() if not expired_only or now >= lease.use_until]
        await asyncio.gather(*(self.retire(lease, wait=not expired_only) for lease in due), return_exceptions=True)
        return len(due)

    def current(self, org_id: UUID) -> Lease | None:
        return self._leases.get(org_id)
