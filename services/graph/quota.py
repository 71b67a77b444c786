"""Counting live things against the organization's quota, through tenancy over the bus.

The metric (`settings.graph_things_quota`, default `things`) is an org-registered quota: an
org that has not set one is unlimited, so tenancy's "no such quota" answer means "go ahead".
A soft delete gives the unit back and a restore takes it again, so the quota bounds live things.

These calls are made by the handlers in app.py, never while the graph's transaction is open:
a unit is taken before the transaction that adds things and given back if it fails, and a
unit freed by a delete is given back after its transaction commits.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.contracts.tenancy import QUOTA_CONSUME, QUOTA_RELEASE, QuotaChange, QuotaNotFound
from shared.kernel.envelope import MessageSpec
from shared.kernel.errors import NotFound
from shared.runtime.context import WorkContext

log = logging.getLogger(__name__)


async def _change(ctx: WorkContext, spec: MessageSpec[Any, Any], amount: int) -> None:
    metric = ctx.runtime.settings.graph_things_quota
    if not metric or amount <= 0:
        return
    try:
        await ctx.call(spec, QuotaChange(metric=metric, amount=amount))
    except NotFound as error:
        if error.code != QuotaNotFound.code:
            raise


async def consume(ctx: WorkContext, amount: int) -> None:
    """Take `amount` or raise tenancy's `QuotaExceeded` (nothing is taken then)."""
    await _change(ctx, QUOTA_CONSUME, amount)


async def give_back(ctx: WorkContext, amount: int) -> None:
    """Return units the graph took but does not use, once its own work is settled.

    A unit that cannot be returned (tenancy unreachable) leaves the count one too high: the org
    may create fewer things, never more. The graph's work stands either way, so that is logged
    rather than raised over a committed write or over the error that made the work fail.
    """
    try:
        await _change(ctx, QUOTA_RELEASE, amount)
    except Exception:
        log.exception("could not give %d %s quota unit(s) back to org %s", amount,
                      ctx.runtime.settings.graph_things_quota, ctx.auth.org_id)


@asynccontextmanager
async def consumed(ctx: WorkContext, amount: int) -> AsyncIterator[None]:
    """Take `amount` units for the block (raising `QuotaExceeded` before it runs); give them back if it fails."""
    await consume(ctx, amount)
    try:
        yield
    except BaseException:
        await give_back(ctx, amount)
        raise
