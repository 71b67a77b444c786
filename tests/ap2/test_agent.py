"""AP2 v2, the shopping agent's side, on the real stack: the agents service, acting for the agent holding a granted
mandate, gets the closed mandate of one purchase from commerce (the agent's key never leaves it); another org's
merchant accepts it; what the constraints forbid is refused before signing, also when purchases race.
"""

import asyncio
from typing import Any

import pytest

from shared.contracts.commerce.ap2 import (
    AP2_CHECKOUT_CREATE,
    AP2_CLOSE,
    AP2_GRANT,
    AP2_JWKS,
    AP2_PRESENT,
    AP2_REVOKE,
    AP2_TRUST_ADD,
    MandateRefused,
)
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Forbidden
from shared.runtime.client import BusClient
from shared.runtime.context import service_identity
from tests.agents.agent_fixtures import make_agent
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)
from tests.x402.test_prices import events_of

BUDGET = [{"type": "payment.amount_range", "currency": "USD", "max": 2000},
          {"type": "payment.budget", "currency": "USD", "max": 3000},
          {"type": "payment.agent_recurrence", "frequency": "ON_DEMAND"}]


def holding(org_id: Any, agent_id: Any) -> Any:
    """What the agents service sends for an agent's purchase: its own identity, acting for the agent."""
    return service_identity("agents", org_id, ("mandates:sign",), on_behalf_of=agent_id)


async def setup(bus: BusClient, buyer: Account, shop: Account) -> tuple[Any, Any]:
    """Agent of `buyer` with a granted mandate; `shop` trusts `buyer`'s credential provider keys."""
    agent = await make_agent(bus, buyer, "openai:unused", deploy=False)
    granted = await bus.request(AP2_GRANT, {"agent_id": str(agent.id), "constraints": BUDGET}, buyer.ctx)
    published = await bus.request(AP2_JWKS, {}, buyer.ctx, protocol=Protocol.AP2)
    await bus.request(AP2_TRUST_ADD, {"issuer": granted.issuer, "jwks": published.model_dump()}, shop.ctx)
    return agent, granted


async def buy(bus: BusClient, buyer: Account, shop: Account, agent: Any, granted: Any, amount: int) -> Any:
    made = await bus.request(AP2_CHECKOUT_CREATE, {"amount": amount, "currency": "USD"}, shop.ctx)
    closed = await bus.request(AP2_CLOSE, {"mandate_id": str(granted.id), "checkout_jwt": made.checkout_jwt,
                                           "nonce": made.nonce}, holding(buyer.org_id, agent.id),
                               protocol=Protocol.AP2)
    assert closed.closed["transaction_id"] == made.checkout_hash and closed.closed["payee"]["id"] == made.merchant_id
    return await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "mandate": closed.mandate}, shop.ctx,
                             protocol=Protocol.AP2)


async def test_the_agent_buys_within_its_mandate_from_another_org(
    bus: BusClient, owner: Account, stranger: Account  # noqa: F811
) -> None:
    agent, granted = await setup(bus, owner, stranger)
    receipt = await buy(bus, owner, stranger, agent, granted, 1800)
    assert receipt.receipt["status"] == "Success"
    with pytest.raises(MandateRefused) as refused:  # 1800 + 1800 > 3000: refused before any signature
        await buy(bus, owner, stranger, agent, granted, 1800)
    assert refused.value.details["reason"] == "budget"
    checks = await events_of(bus, owner, "price_event", 2)
    assert sorted(c["withinBudget"] for c in checks) == [False, True] and {c["protocol"] for c in checks} == {"ap2"}
    [paid] = await events_of(bus, stranger, "payment_event", 1)
    assert paid["protocol"] == "ap2" and paid["amountMinor"] == 1800

    made = await bus.request(AP2_CHECKOUT_CREATE, {"amount": 100, "currency": "USD"}, stranger.ctx)
    body = {"mandate_id": str(granted.id), "checkout_jwt": made.checkout_jwt, "nonce": made.nonce}
    with pytest.raises(Forbidden):  # the org's owner is not the agent
        await bus.request(AP2_CLOSE, body, owner.ctx, protocol=Protocol.AP2)
    other = await make_agent(bus, owner, "openai:unused", deploy=False)
    with pytest.raises(Forbidden):  # the agents service acting for another agent
        await bus.request(AP2_CLOSE, body, holding(owner.org_id, other.id), protocol=Protocol.AP2)


async def test_racing_purchases_never_overspend_the_mandate(
    bus: BusClient, owner: Account, stranger: Account  # noqa: F811
) -> None:
    agent, granted = await setup(bus, owner, stranger)
    outcomes = await asyncio.gather(*(buy(bus, owner, stranger, agent, granted, 1200) for _ in range(4)),
                                    return_exceptions=True)
    paid = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, MandateRefused)]
    assert len(paid) == 2 and len(refused) == 2, outcomes
    assert {r.details["reason"] for r in refused} == {"budget"}


async def test_a_revoked_mandate_is_closed_no_more(bus: BusClient, owner: Account, stranger: Account) -> None:  # noqa: F811
    agent, granted = await setup(bus, owner, stranger)
    await buy(bus, owner, stranger, agent, granted, 500)
    assert (await bus.request(AP2_REVOKE, {"id": str(granted.id)}, owner.ctx)).status == "revoked"
    with pytest.raises(MandateRefused) as refused:
        await buy(bus, owner, stranger, agent, granted, 500)
    assert refused.value.details["reason"] == "revoked"
    actions = [e["action"] for e in await events_of(bus, owner, "mandate_event", 3)]
    assert sorted(actions) == ["created", "created", "revoked"]  # the grant, one closed mandate, the revocation
