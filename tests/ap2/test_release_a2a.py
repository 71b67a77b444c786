"""A refused purchase gives its budget back, through the `ap2_purchase` tool over A2A (a scripted model, org B's
merchant agent at its real A2A URL): with a budget for 100, a 60 purchase the merchant refuses, then a 90 purchase
is paid — without the release the 60 would still count and the 90 be refused as over budget.
"""

import pytest

from shared.contracts.agents import EXTERNAL_ADD
from shared.contracts.commerce.products import PRODUCT_CREATE
from shared.runtime.client import BusClient
from tests.a2a.conftest import publish
from tests.agents.agent_fixtures import owner, stranger  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.ap2.test_e2e_a2a import Market, buy, grant, published_keys, shopper
from tests.gateway.conftest import caller_for
from tests.tenancy.conftest import Account, unique
from tests.x402.test_prices import events_of

pytestmark = pytest.mark.timeout(300)  # as test_e2e_a2a.py: many HTTP round trips, minutes on a loaded machine
BUDGET_100 = [{"type": "payment.amount_range", "currency": "USD", "max": 10000},
              {"type": "payment.budget", "currency": "USD", "max": 10000},
              {"type": "payment.agent_recurrence", "frequency": "ON_DEMAND"}]


async def test_a_purchase_the_merchant_refuses_gives_its_budget_back(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    agent, script = await shopper(bus, owner, model_server)
    mandate_id = await grant(gateway, owner, agent.id, BUDGET_100)
    cup = await bus.request(PRODUCT_CREATE, {"name": "Cup", "price": 6000, "currency": "usd"}, stranger.ctx)
    pot = await bus.request(PRODUCT_CREATE, {"name": "Pot", "price": 9000, "currency": "usd"}, stranger.ctx)
    shop = await publish(bus, gateway, stranger, model_server, tools=["ap2_merchant"])
    added = await bus.request(EXTERNAL_ADD, {"card_url": shop.base_url, "slug": unique("shop"),
                                             "api_key": stranger.key}, owner.ctx, timeout=30)
    market = Market(shop, str(cup.id), added.slug)

    refused = await buy(bus, owner, agent, script, market, mandate_id)  # B does not trust A's provider yet
    assert refused["error"]["code"] == "mandate_refused", refused
    assert refused["error"]["reason"] == "untrusted_issuer"
    assert refused["error"]["mandate_use_released"] is True

    b = await caller_for(gateway, stranger)
    trusted = await b.http.post("/v1/ap2/trust", json={"issuer": str(owner.org_id),
                                                       "jwks": await published_keys(gateway, owner)})
    await b.http.aclose()
    assert trusted.status_code == 201, trusted.text
    market.product_id = str(pot.id)
    paid = await buy(bus, owner, agent, script, market, mandate_id)  # 9000: within 10000 as 6000 was released
    assert paid["status"] == "paid" and paid["amount_minor"] == 9000, paid

    over = await buy(bus, owner, agent, script, market, mandate_id)  # 9000 + 9000: the budget still holds
    assert over["error"]["reason"] == "budget", over
    assert "mandate_use_released" not in over["error"]  # refused before anything was signed or presented
    actions = [e["action"] for e in await events_of(bus, owner, "mandate_event", 4)]  # grant, 2 closed, released
    assert sorted(actions) == ["created", "created", "created", "released"]
    rejected = [e for e in await events_of(bus, stranger, "mandate_event", 4) if e["action"] == "rejected"]
    assert [e["reason"] for e in rejected] == ["untrusted_issuer"]
