"""The `ap2_mandates` tool: the AP2 mandates granted to this agent, with what remains of each, so its model can
choose one (its `id` is `ap2_purchase`'s `mandate_id`) and a price it may pay before buying.

Commerce answers for the agent the agents service acts for (`ap2.mandate.held`, the same identity that
closes mandates, reading only): each active open mandate's constraints and `remaining` — budget and uses
left, the most one purchase may spend now (`max_amount_now`, minor units by currency), when a recurrence
allows the next use, and `usable` / `why_not`. What it says is what `ap2_purchase` will be allowed.
"""

from typing import Any

from services.agents.run_work import RunWork
from services.agents.tools_builtin import Ap2MandatesArgs
from shared.contracts.commerce.ap2 import AP2_HELD
from shared.kernel.envelope import Protocol
from shared.runtime.context import service_identity


async def held(work: RunWork, args: Ap2MandatesArgs) -> dict[str, Any]:
    holding = service_identity("agents", work.run.org_id, ("mandates:read",), on_behalf_of=work.agent.id)
    found = await work.ctx.call(AP2_HELD, {}, auth=holding, protocol=Protocol.AP2)
    items = [item.model_dump(mode="json") for item in found.items
             if item.kind == "payment" or not args.payment_only]
    if args.usable_only:
        items = [item for item in items if item["remaining"]["usable"]]
    return {"mandates": items, "count": len(items)}
