"""Quota reservations: units a service holds for work it is about to commit, settled once it has.

`consume` counts a unit at once: a caller that then fails to commit (or dies first) leaks it.
A reservation does not leak: it counts as used while it is live, `settle` turns the units the
work really used into settled usage once the work committed (the rest go back), and a
reservation nobody settles stops counting when it expires. Settling twice counts once, so a
caller that is unsure whether its settle arrived simply settles again.
"""

from services.tenancy import repository_access as access_repo, repository_quota as quota_repo
from services.tenancy.service_access import quota_caller, quota_model, require_caller
from shared.contracts.tenancy import Quota, QuotaNotFound, QuotaReservation, QuotaReserve, QuotaSettle
from shared.kernel.errors import InvalidRequest, NotFound, QuotaExceeded
from shared.kernel.ids import uuid7
from shared.runtime.context import WorkContext


async def reserve(ctx: WorkContext, payload: QuotaReserve) -> QuotaReservation:
    """Hold `amount` units (a lease: as many as fit, down to `at_least`) or raise `QuotaExceeded`; an org without
    the quota is unlimited (`id` None)."""
    actor, org = await quota_caller(ctx)
    require_caller(ctx, actor, "quotas", "consume")
    if not await access_repo.lock_quota(ctx.session, org.id, payload.metric):
        return QuotaReservation(id=None, metric=payload.metric, amount=payload.amount)
    reservation_id = uuid7()
    reserved = await quota_repo.reserve(ctx.session, org.id, reservation_id, payload.metric, payload.amount,
                                        payload.ttl_seconds, payload.at_least)
    if reserved is None:
        current = await access_repo.get_quota(ctx.session, org.id, payload.metric)
        raise QuotaExceeded(f"organization {org.slug} has used its {payload.metric} quota", {
            "metric": payload.metric, "limit": current.quota_limit, "used": current.used,
            "reserved": current.reserved, "requested": min(payload.at_least or payload.amount, payload.amount),
        })
    row, amount = reserved
    held = await quota_repo.reservation(ctx.session, org.id, reservation_id)
    return QuotaReservation(id=reservation_id, metric=payload.metric, amount=amount,
                            expires_at=held.expires_at, quota=quota_model(row))


async def settle(ctx: WorkContext, payload: QuotaSettle) -> Quota:
    """Count the units the work used, free the rest; a second settle of the same reservation changes nothing.

    The org need not be writable: the work being settled has committed already.
    """
    actor, org = await quota_caller(ctx, writable=False)
    require_caller(ctx, actor, "quotas", "consume")
    org_id = org.id
    held = await quota_repo.reservation(ctx.session, org_id, payload.reservation_id)
    if held is None:
        raise NotFound(f"no quota reservation {payload.reservation_id}", {"reservation_id": str(payload.reservation_id)})
    if payload.used > held.amount:
        raise InvalidRequest(f"{payload.used} used of {held.amount} reserved", {"reserved": held.amount})
    await quota_repo.settle(ctx.session, org_id, held.id, held.metric, payload.used)
    current = await access_repo.get_quota(ctx.session, org_id, held.metric)
    if current is None:
        raise QuotaNotFound(f"no quota {held.metric!r} in this organization", {"metric": held.metric})
    return quota_model(current)
