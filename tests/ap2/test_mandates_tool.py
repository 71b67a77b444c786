"""The `ap2_mandates` tool (issue #22's gaps), through the agent tool loop on the real stack: the shopping agent's
model lists the mandates granted to it with what remains of each, chooses one that can pay the price, and buys with
it over A2A (`ap2_purchase`); once the budget left cannot pay the price, it sees so and buys nothing. The same list
is a person's to read for any agent of the org, and no one else's.
"""

import json
from typing import Any

import pytest

from shared.contracts.agents import CHAT
from shared.contracts.commerce.ap2 import AP2_GRANT, AP2_HELD, AP2_REVOKE
from shared.kernel.errors import Forbidden, InvalidRequest
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent, owner, stranger  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.ap2.test_agent import holding
from tests.ap2.test_checkout_mandates import LINE_ITEMS
from tests.ap2.test_e2e_a2a import BUDGET, Market, grant, open_market
from tests.tenancy.conftest import Account

pytestmark = pytest.mark.timeout(300)  # as test_e2e_a2a.py: many HTTP round trips, minutes on a loaded machine
PRICE = 1800
ONCE_UP_TO_10 = [{"type": "payment.amount_range", "currency": "USD", "max": 1000}]


def choosing(market: Market) -> Any:
    """A scripted model: list the usable mandates, buy with the first whose `max_amount_now` pays the price."""

    def reply(body: dict[str, Any], number: int) -> dict[str, Any]:
        told = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]
        if not told:
            return {"tool_calls": [("ap2_mandates", {"usable_only": True})]}
        if "mandates" not in told[-1]:
            return {"text": "done"}
        fits = [m for m in told[-1]["mandates"] if m["remaining"].get("max_amount_now", {}).get("USD", 0) >= PRICE]
        if not fits:
            return {"text": "no mandate of mine can pay for it"}
        return {"tool_calls": [("ap2_purchase", {"merchant": market.merchant_slug, "mandate_id": fits[0]["id"],
                                                 "items": [{"product_id": market.product_id, "quantity": 1}]})]}

    return reply


async def told_in_a_run(bus: BusClient, buyer: Account, slug: str, script: Any) -> list[dict[str, Any]]:
    """One run of the agent; what its tools told the model, in order."""
    script.requests.clear()
    reply = await bus.request(CHAT, {"slug": slug, "message": "buy the cup"}, buyer.ctx, timeout=90)
    assert reply.run.status == "completed", reply.run
    return [json.loads(m["content"]) for m in script.requests[-1]["messages"] if m["role"] == "tool"]


async def test_the_model_chooses_a_mandate_that_can_pay_then_buys_with_it(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, script = model_server.script()
    agent = await make_agent(bus, owner, model, tools=["ap2_purchase", "ap2_mandates"])
    small = await grant(gateway, owner, agent.id, ONCE_UP_TO_10)  # usable, but 1000 cannot pay 1800
    budget = await grant(gateway, owner, agent.id, BUDGET)  # up to 2000 a purchase, 3000 in all
    revoked = await grant(gateway, owner, agent.id, BUDGET)
    await bus.request(AP2_REVOKE, {"id": revoked}, owner.ctx)
    market = await open_market(bus, gateway, owner, stranger, model_server, price=PRICE)
    script.replies = [choosing(market)]

    listed, paid = await told_in_a_run(bus, owner, agent.slug, script)
    by_id = {m["id"]: m for m in listed["mandates"]}
    assert set(by_id) == {small, budget}  # the revoked one is not offered
    left = by_id[small]["remaining"]
    assert (left["uses_left"], left["usable"], left["max_amount_now"]) == (1, True, {"USD": 1000})
    assert by_id[budget]["remaining"]["budget"] == {"currency": "USD", "max": 3000, "spent": 0, "left": 3000}
    assert by_id[budget]["constraints"] == [*BUDGET, by_id[budget]["constraints"][-1]]  # and its payment.reference
    assert paid["status"] == "paid" and paid["mandate_id"] != budget  # the closed mandate, under `budget`:
    assert paid["amount_minor"] == PRICE

    told = await told_in_a_run(bus, owner, agent.slug, script)
    assert len(told) == 1  # listed, nothing bought: no mandate pays 1800 now
    now = {m["id"]: m["remaining"] for m in told[0]["mandates"]}
    assert now[budget]["budget"] == {"currency": "USD", "max": 3000, "spent": PRICE, "left": 3000 - PRICE}
    assert (now[budget]["uses"], now[budget]["uses_left"], now[budget]["max_amount_now"]) == (1, None, {"USD": 1200})

    as_person = await bus.request(AP2_HELD, {"agent_id": str(agent.id)}, owner.ctx)
    assert {str(m.id) for m in as_person.items} == {small, budget}
    assert (await bus.request(AP2_HELD, {"agent_id": str(agent.id)}, stranger.ctx)).items == []  # another org's
    other = await make_agent(bus, owner, "openai:unused", deploy=False)
    with pytest.raises(Forbidden):  # the agents service, acting for another agent
        await bus.request(AP2_HELD, {"agent_id": str(agent.id)}, holding(owner.org_id, other.id))
    with pytest.raises(InvalidRequest):  # a person names the agent
        await bus.request(AP2_HELD, {}, owner.ctx)
    granted = await bus.request(AP2_GRANT, {"agent_id": str(other.id), "kind": "checkout", "constraints": [
        LINE_ITEMS]}, owner.ctx)
    [listed_checkout] = (await bus.request(AP2_HELD, {"agent_id": str(other.id)}, owner.ctx)).items
    assert (listed_checkout.id, listed_checkout.kind, listed_checkout.remaining["usable"]) == \
        (granted.id, "checkout", True)
