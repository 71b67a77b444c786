"""AP2 v2, the shopping agent choosing a mandate: the open mandates granted to it, with what remains of each.

The agents service asks for the agent it acts for (the `ap2_mandates` tool: its model chooses a mandate
before `ap2_purchase`), a person of the org for any of its agents. Each mandate comes with its
constraints and `remaining` (ap2/remaining.py: budget and uses left, the most a purchase may spend now,
whether it can pay at all), computed from the closed mandates signed under it and not released — the
same count `service_ap2_agent.close` checks against. A read: nothing is changed, nothing logged.
"""

import time

from services.commerce import repository_ap2 as repo
from services.commerce.ap2 import constraints
from services.commerce.ap2.remaining import remaining
from services.commerce.ap2.verify import OPEN_CHECKOUT_VCT, OPEN_PAYMENT_VCT
from services.commerce.repository_ap2 import UsageRow
from services.commerce.service_ap2_agent import HOLDING_ROLE
from shared.contracts.commerce.ap2 import HeldList, HeldMandate, HeldMandates
from shared.kernel.errors import Forbidden, InvalidRequest
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

KINDS = {OPEN_PAYMENT_VCT: "payment", OPEN_CHECKOUT_VCT: "checkout"}


async def held(ctx: WorkContext, payload: HeldList) -> HeldMandates:
    require(ctx.auth, "mandates", "read")
    auth, agent_id = ctx.auth, payload.agent_id
    if auth.role == HOLDING_ROLE:
        if agent_id not in (None, auth.actor_id):
            raise Forbidden("the agents service lists only the mandates of the agent it acts for")
        agent_id = auth.actor_id
    elif (auth.role or "").startswith("service:"):
        raise Forbidden("an agent's mandates are listed for the agent, or for a person of its org")
    if agent_id is None:
        raise InvalidRequest("name the agent (agent_id)")
    rows = await repo.held(ctx.session, auth.org_id, agent_id)
    used = await repo.held_usage(ctx.session, auth.org_id, [row.id for row in rows]) if rows else {}
    now = time.time()
    items = []
    for row in rows:
        usage = used.get(row.id, UsageRow(0, {}, None))  # never used
        left = remaining(row.claims, constraints.Usage(usage.uses, usage.spent, usage.last_used_at.timestamp()
                                                       if usage.last_used_at else None), now)
        items.append(HeldMandate(id=row.id, kind=KINDS.get(row.claims.get("vct"), "payment"),
                                 expires_at=row.expires_at, constraints=row.claims["constraints"],
                                 payee=row.claims.get("payee"), payment_amount=row.claims.get("payment_amount"),
                                 remaining=left))
    return HeldMandates(items=items)
