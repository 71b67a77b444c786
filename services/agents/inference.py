"""What a run costs the org's inference quota: a reservation taken when it starts, settled when it ends.

Asking tenancy for one unit per completion cost a bus round trip on every iteration of the tool loop
(~23 ms of ~50 with an instant model). Instead a run reserves its whole iteration limit before anything
is stored (`reserve`), keeps the number reserved with the run (`request.inference_reserved`), funds
completion *i* from the reservation while *i* ≤ that number, and gives back what it did not use when it
ends (`settle`: completed, failed, or failed as orphaned by the sweeper).

- A config that offers the model no tool reserves one unit (its run is one completion): nothing to give back.
- Not enough left for the whole block: the run reserves what is left and, should it need more, asks for
  one unit per completion beyond it (refused → the run fails with `quota_exceeded`). Nothing left: the
  chat is refused with `quota_exceeded`, nothing stored. A refused block is a refused request, so tenancy
  logs `inference_quota_exceeded` for it (with `requested`), even when the smaller reservation then fits.
- Takeover after a crash: the reservation is taken once, by the chat; a resumed run funds its completions
  from the stored number and counts the completions from its stored steps, and only the replica (or the
  sweeper) whose `finish_run` marks the run finished settles it, so units are given back once. A completion
  whose step was never stored before the crash is asked again and funded once (the org is charged one unit
  less, never more); a give-back lost to a tenancy outage leaves the org charged more, never less (logged).
- Units are taken as the agents service on behalf of the caller (tenancy checks the member's own rights)
  and given back as the service itself, with its `quotas:release` grant (tenancy allows that for
  `inference` only). An org without the quota, or `agents_inference_quota` unset, is unmetered.
"""

import logging
from typing import Any
from uuid import UUID

from services.agents.rows import RunRow
from services.agents.tools_access import agents_identity
from shared.contracts.agents import InferenceQuotaExceeded
from shared.contracts.tenancy import QUOTA_CONSUME, QUOTA_RELEASE, QuotaChange, QuotaNotFound
from shared.kernel.errors import NotFound, QuotaExceeded
from shared.runtime.context import WorkContext

log = logging.getLogger(__name__)

RESERVED = "inference_reserved"
"""The key of a run's `request` that keeps its reservation (absent or None: the run is unmetered)."""


def iteration_limit(config: dict[str, Any]) -> int:
    """The completions a run of this config may make (the agent's own limit, 10 at most)."""
    return int(config.get("max_iterations") or 10)


def offers_tools(config: dict[str, Any]) -> bool:
    """Whether the model of a run of this config is offered any tool (built-in, HTTP or plugin tools are named in
    `tools`; MCP servers and external agents bring their own)."""
    return bool(config.get("tools") or config.get("mcp_servers") or config.get("delegates_to"))


def units_to_reserve(config: dict[str, Any]) -> int:
    """What a run of this config reserves: its iteration limit, or one unit when the model is offered no tool (it
    answers in one completion, so nothing is given back and the run's end makes no call to tenancy; a model that
    asks for tools all the same is funded unit by unit beyond it, as any run past its reservation)."""
    return iteration_limit(config) if offers_tools(config) else 1


def reserved_of(run: RunRow) -> int | None:
    return run.request.get(RESERVED)


async def _take(ctx: WorkContext, metric: str, amount: int) -> bool:
    """`amount` units as the service on behalf of the caller; False when the org has no such quota (unmetered)."""
    try:
        await ctx.call(QUOTA_CONSUME, QuotaChange(metric=metric, amount=amount),
                       auth=agents_identity(ctx.auth.org_id, ctx.auth.actor_id))
    except NotFound as error:
        if error.code != QuotaNotFound.code:
            raise
        return False
    return True


async def reserve(ctx: WorkContext, agent_slug: str, units: int) -> int | None:
    """Reserve `units`, or what is left of the quota; `InferenceQuotaExceeded` when nothing is. None: unmetered."""
    metric = ctx.runtime.settings.agents_inference_quota
    if not metric:
        return None
    amount = units
    for _ in range(3):  # the block, then what tenancy said was left (again if others took some meanwhile)
        try:
            return amount if await _take(ctx, metric, amount) else None
        except QuotaExceeded as error:  # tenancy logged `inference_quota_exceeded` with its refusal
            refused = error
            left = int(error.details.get("limit", 0)) - int(error.details.get("used", 0))
            if left <= 0:
                break
            amount = min(left, amount)
    raise InferenceQuotaExceeded(refused.message, {**refused.details, "agent": agent_slug}) from None


async def fund(ctx: WorkContext, run: RunRow, iteration: int) -> None:
    """The unit of completion `iteration`: the reservation's, else one more from the quota (or `QuotaExceeded`)."""
    reserved = reserved_of(run)
    metric = ctx.runtime.settings.agents_inference_quota
    if reserved is None or iteration <= reserved or not metric:
        return
    await _take(ctx, metric, 1)


def funded(run: RunRow, iteration: int) -> bool:
    reserved = reserved_of(run)
    return reserved is None or iteration <= reserved


async def give_back(ctx: WorkContext, org_id: UUID, units: int) -> None:
    """Return `units` as the agents service itself; a failure is logged (the org stays charged), never raised."""
    metric = ctx.runtime.settings.agents_inference_quota
    if not metric or units <= 0:
        return
    try:
        await ctx.call(QUOTA_RELEASE, QuotaChange(metric=metric, amount=units), auth=agents_identity(org_id))
    except NotFound as error:
        if error.code != QuotaNotFound.code:
            log.exception("could not give %d %s unit(s) back to org %s", units, metric, org_id)
    except Exception:
        log.exception("could not give %d %s unit(s) back to org %s", units, metric, org_id)


async def settle(ctx: WorkContext, run: RunRow, completions: int) -> None:
    """Give back the reserved units the run did not use; call once, after the run is marked finished."""
    reserved = reserved_of(run) or 0
    await give_back(ctx, run.org_id, reserved - min(completions, reserved))
