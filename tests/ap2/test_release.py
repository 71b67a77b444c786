"""A refused purchase gives its budget back (issue #22's gaps), on the real stack: the agents service, acting for the
agent holding a mandate, releases a closed mandate the merchant refused — once, only for that agent — so the next
purchase may spend what the refused one had counted; the merchant never accepts a chain it refused, racing or
later, so a released use can never be charged.
"""

import asyncio
from typing import Any

import pytest

from shared.contracts.commerce.ap2 import (
    AP2_CHECKOUT_CREATE,
    AP2_CLOSE,
    AP2_GRANT,
    AP2_HELD,
    AP2_PRESENT,
    AP2_RELEASE,
    AP2_TRUST_ADD,
    MandateRefused,
)
from shared.contracts.commerce.payments import PaymentDeclined
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Conflict, Forbidden, NotFound
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent
from tests.ap2.chains import close, jwks, key, open_mandate
from tests.ap2.test_agent import holding, setup
from tests.ap2.test_merchant import RANGE, Merchant, merchant  # noqa: F401 (fixture)
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account
from tests.x402.test_prices import events_of

BUDGET_100 = [{"type": "payment.amount_range", "currency": "USD", "max": 10000},
              {"type": "payment.budget", "currency": "USD", "max": 10000},
              {"type": "payment.agent_recurrence", "frequency": "ON_DEMAND"}]


async def closed_for(bus: BusClient, buyer: Account, shop: Account, agent: Any, mandate_id: Any,
                     amount: int) -> tuple[Any, Any]:
    made = await bus.request(AP2_CHECKOUT_CREATE, {"amount": amount, "currency": "USD"}, shop.ctx)
    closed = await bus.request(AP2_CLOSE, {"mandate_id": str(mandate_id), "checkout_jwt": made.checkout_jwt,
                                           "nonce": made.nonce}, holding(buyer.org_id, agent.id),
                               protocol=Protocol.AP2)
    return made, closed


async def granted_and_closed(bus: BusClient, buyer: Account, shop: Account) -> tuple[Any, Any, Any, Any]:
    """(agent, its mandate with a budget for 100, a checkout for 60 at `shop`, the closed mandate paying it)."""
    agent, _ = await setup(bus, buyer, shop)
    granted = await bus.request(AP2_GRANT, {"agent_id": str(agent.id), "constraints": BUDGET_100}, buyer.ctx)
    made, closed = await closed_for(bus, buyer, shop, agent, granted.id, 6000)
    return agent, granted, made, closed


async def test_a_refused_purchase_gives_its_budget_back_once(
    bus: BusClient, owner: Account, stranger: Account  # noqa: F811
) -> None:
    agent, granted, made, closed = await granted_and_closed(bus, owner, stranger)
    elsewhere = await bus.request(AP2_CHECKOUT_CREATE, {"amount": 6000, "currency": "USD"}, stranger.ctx)
    with pytest.raises(MandateRefused) as wrong:  # presented for another checkout: the merchant refuses it
        await bus.request(AP2_PRESENT, {"checkout_id": str(elsewhere.id), "mandate": closed.mandate}, stranger.ctx,
                          protocol=Protocol.AP2)
    assert wrong.value.details["reason"] == "nonce"
    with pytest.raises(MandateRefused) as over:  # 6000 still counted: 6000 + 9000 > 10000
        await closed_for(bus, owner, stranger, agent, granted.id, 9000)
    assert over.value.details["reason"] == "budget"

    with pytest.raises(Forbidden):  # only for the agent holding it, asked by the agents service
        await bus.request(AP2_RELEASE, {"mandate_id": str(closed.id), "reason": "nonce"}, owner.ctx)
    other = await make_agent(bus, owner, "openai:unused", deploy=False)
    with pytest.raises(Forbidden):
        await bus.request(AP2_RELEASE, {"mandate_id": str(closed.id), "reason": "nonce"},
                          holding(owner.org_id, other.id))
    released = await bus.request(AP2_RELEASE, {"mandate_id": str(closed.id), "reason": "nonce"},
                                 holding(owner.org_id, agent.id))
    assert (released.id, released.fulfills, released.status) == (closed.id, granted.id, "released")
    with pytest.raises(Conflict):  # a use is released once
        await bus.request(AP2_RELEASE, {"mandate_id": str(closed.id), "reason": "nonce"},
                          holding(owner.org_id, agent.id))
    with pytest.raises(NotFound):  # another org cannot even see it
        await bus.request(AP2_RELEASE, {"mandate_id": str(closed.id), "reason": "nonce"},
                          holding(stranger.org_id, agent.id))

    made, closed = await closed_for(bus, owner, stranger, agent, granted.id, 9000)  # 9000 within 10000 now
    receipt = await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "mandate": closed.mandate},
                                stranger.ctx, protocol=Protocol.AP2)
    assert receipt.receipt["status"] == "Success"
    with pytest.raises(MandateRefused) as spent:  # and the budget holds from there
        await closed_for(bus, owner, stranger, agent, granted.id, 1001)
    assert spent.value.details["reason"] == "budget"
    logged = await events_of(bus, owner, "mandate_event", 5)  # 2 grants, 2 closed, 1 released
    assert [(e["mandateId"], e["fulfills"], e["reason"], e["amountMinor"], e["protocol"]) for e in logged
            if e["action"] == "released"] == [(str(released.id), str(granted.id), "nonce", 6000, "ap2")]


async def test_a_chain_the_merchant_refused_is_never_accepted_later(
    bus: BusClient, merchant: Merchant  # noqa: F811
) -> None:
    stranger_cp = key("cp-2")
    purchase = await merchant.checkout()
    chain = close(open_mandate(stranger_cp, merchant.agent, [RANGE]), merchant.agent, purchase)
    assert await merchant.refused(purchase, chain) == "untrusted_issuer"
    await merchant.bus.request(AP2_TRUST_ADD, {"issuer": "https://cp2.test", "jwks": jwks(stranger_cp)},
                               merchant.account.ctx)
    assert await merchant.refused(purchase, chain) == "refused_before"  # trusted now, but refused for good
    fresh = close(open_mandate(stranger_cp, merchant.agent, [RANGE]), merchant.agent, purchase)
    assert (await merchant.present(purchase, fresh)).receipt["status"] == "Success"

    declined = await merchant.checkout()
    card = {"id": "pm_card_chargeDeclined", "type": "card", "description": "declined"}
    chain = close(merchant.mandate(RANGE), merchant.agent, declined, mandate={"payment_instrument": card})
    with pytest.raises(PaymentDeclined):
        await merchant.present(declined, chain)
    assert await merchant.refused(declined, chain) == "refused_before"  # the PSP is not asked again

    racing = await merchant.checkout()  # the same chain twice at once: the second waits, then finds it refused
    chain = close(merchant.mandate(RANGE), merchant.agent, racing, mandate={"payment_instrument": card})
    outcomes = await asyncio.gather(*(merchant.present(racing, chain) for _ in range(2)), return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["MandateRefused", "PaymentDeclined"], outcomes
    assert [o.details["reason"] for o in outcomes if isinstance(o, MandateRefused)] == ["refused_before"]


async def test_racing_releases_give_a_use_back_once_and_the_budget_holds(
    bus: BusClient, owner: Account, stranger: Account  # noqa: F811
) -> None:
    agent, granted, _, closed = await granted_and_closed(bus, owner, stranger)
    as_agent = holding(owner.org_id, agent.id)
    release = {"mandate_id": str(closed.id), "reason": "payment_declined"}
    outcomes = await asyncio.gather(*(bus.request(AP2_RELEASE, release, as_agent) for _ in range(3)),
                                    *(closed_for(bus, owner, stranger, agent, granted.id, 9000) for _ in range(2)),
                                    return_exceptions=True)
    releases, closes = outcomes[:3], outcomes[3:]
    assert sorted(type(o).__name__ for o in releases) == ["Conflict", "Conflict", "ReleasedMandate"], releases
    signed = [o for o in closes if not isinstance(o, BaseException)]
    assert len(signed) <= 1 and all(isinstance(o, MandateRefused) and o.details["reason"] == "budget"
                                    for o in closes if isinstance(o, BaseException)), closes
    [held] = [m for m in (await bus.request(AP2_HELD, {"agent_id": str(agent.id)}, owner.ctx)).items
              if m.id == granted.id]
    assert held.remaining["budget"]["spent"] == 9000 * len(signed) <= 10000
