"""Counting live things against the organization's quota, through tenancy over the bus.

The metric (`settings.graph_things_quota`, default `things`) is an org-registered quota: an
org that has not set one is unlimited, so tenancy's "no such quota" answer means "go ahead".
A soft delete gives the unit back and a restore takes it again, so the quota bounds live things.
"""

from typing import Any

from services.tenancy.errors import QuotaNotFound
from services.tenancy.schemas import QUOTA_CONSUME, QUOTA_RELEASE
from shared.kernel.envelope import MessageSpec
from shared.kernel.errors import NotFound
from shared.runtime.handlers import RequestContext


async def _change(ctx: RequestContext, spec: MessageSpec[Any, Any], amount: int) -> None:
    metric = ctx.runtime.settings.graph_things_quota
    if not metric or amount <= 0:
        return
    try:
        await ctx.runtime.bus.request(
            spec, {"metric": metric, "amount": amount}, ctx.auth,
            protocol=ctx.envelope.protocol, causation_id=ctx.envelope.id,
            correlation_id=ctx.envelope.correlation_id or ctx.envelope.id,
        )
    except NotFound as error:
        if error.code != QuotaNotFound.code:
            raise


async def consume(ctx: RequestContext, amount: int) -> None:
    """Take `amount` or raise tenancy's `QuotaExceeded` (nothing is written then)."""
    await _change(ctx, QUOTA_CONSUME, amount)


async def release(ctx: RequestContext, amount: int) -> None:
    await _change(ctx, QUOTA_RELEASE, amount)
