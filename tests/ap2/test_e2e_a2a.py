"""AP2 over A2A end to end (issue #22): a person of org A grants A's agent X an open mandate; X (a scripted model
calling `ap2_purchase`) buys a product from org B's merchant agent through the official a2a-sdk client at B's
A2A URL (real HTTP); B's merchant verifies the closed mandate and returns a signed receipt; both orgs' event
logs show the mandate and payment events with `protocol: ap2`, and B's revenue by protocol counts the sale.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.contracts.agents import CHAT, EXTERNAL_ADD
from shared.contracts.agents.ap2 import AP2_EXTENSION_URI
from shared.contracts.commerce.products import PRODUCT_CREATE
from shared.contracts.eventlog import REVENUE
from shared.contracts.graph import CONNECTION_QUERY
from shared.runtime.client import BusClient
from tests.a2a.conftest import Published, fetch_card, publish
from tests.agents.agent_fixtures import make_agent, owner, stranger  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.ap2.test_merchant import verify_receipt
from tests.gateway.conftest import caller_for  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, unique
from tests.x402.test_prices import events_of

pytestmark = pytest.mark.timeout(300)  # two orgs, two agents, a dozen HTTP round trips: minutes on a loaded machine
BUDGET = [{"type": "payment.amount_range", "currency": "USD", "max": 2000},
          {"type": "payment.budget", "currency": "USD", "max": 3000},
          {"type": "payment.agent_recurrence", "frequency": "ON_DEMAND"}]


@dataclass
class Market:
    """Org B's merchant agent and product, and org A's name for the merchant."""

    shop: Published
    product_id: str
    merchant_slug: str


async def open_market(bus: BusClient, gateway_url: str, buyer: Account, seller: Account, server: ScriptedModel,
                      price: int = 1800) -> Market:
    """B sells a product through its merchant agent and trusts A's credential provider (A granted a mandate
    already: its keys exist); A adds B's agent as an external agent, with a key B gave it."""
    product = await bus.request(PRODUCT_CREATE, {"name": "Espresso cup", "price": price, "currency": "usd"},
                                seller.ctx)
    shop = await publish(bus, gateway_url, seller, server, tools=["ap2_merchant"])
    added = await bus.request(EXTERNAL_ADD, {"card_url": shop.base_url, "slug": unique("shop"),
                                             "api_key": seller.key}, buyer.ctx, timeout=30)
    a_keys = await published_keys(gateway_url, buyer)
    b = await caller_for(gateway_url, seller)
    trusted = await b.http.post("/v1/ap2/trust", json={"issuer": str(buyer.org_id), "jwks": a_keys})
    await b.http.aclose()
    assert trusted.status_code == 201, trusted.text
    return Market(shop, str(product.id), added.slug)


async def published_keys(gateway_url: str, account: Account) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as public:
        return (await public.get(f"/v1/ap2/{account.org_id}/jwks.json")).json()


async def grant(gateway_url: str, buyer: Account, agent_id: Any, constraints: list[dict[str, Any]] = BUDGET) -> str:
    """A person of org A grants the agent an open payment mandate over HTTP; its id."""
    a = await caller_for(gateway_url, buyer)
    granted = await a.http.post("/v1/ap2/mandates", json={"agent_id": str(agent_id), "constraints": constraints})
    await a.http.aclose()
    assert granted.status_code == 201, granted.text
    return granted.json()["id"]


def buying(market: Market, mandate_id: str | None, quantity: int = 1) -> Any:
    """A scripted reply: call `ap2_purchase` once, then say what the tool answered."""

    def reply(body: dict[str, Any], number: int) -> dict[str, Any]:
        if any(m["role"] == "tool" for m in body["messages"]):
            return {"text": "done"}
        return {"tool_calls": [("ap2_purchase", {"merchant": market.merchant_slug, "mandate_id": mandate_id,
                                                 "items": [{"product_id": market.product_id,
                                                            "quantity": quantity}]})]}

    return reply


async def shopper(bus: BusClient, buyer: Account, server: ScriptedModel) -> tuple[Any, Any]:
    """Agent X of org A (not yet granted a mandate) with the shopping tool, on a scripted model."""
    model, script = server.script()
    return await make_agent(bus, buyer, model, tools=["ap2_purchase"]), script


@dataclass
class Purchase:
    """Agent X of org A with its granted mandate, and the market it buys in."""

    agent: Any
    script: Any
    mandate_id: str
    market: Market


async def ready(bus: BusClient, gateway_url: str, buyer: Account, seller: Account, server: ScriptedModel,
                price: int = 1800) -> Purchase:
    """Agent X granted a mandate, then org B's market open to it."""
    agent, script = await shopper(bus, buyer, server)
    mandate_id = await grant(gateway_url, buyer, agent.id)
    return Purchase(agent, script, mandate_id, await open_market(bus, gateway_url, buyer, seller, server, price))


async def buy(bus: BusClient, buyer: Account, agent: Any, script: Any, market: Market, mandate_id: str,
              quantity: int = 1) -> dict[str, Any]:
    """One run of agent X buying; the tool's result as the model was told it (the latest one: runs racing each
    other read theirs from `script.requests`)."""
    script.replies = [buying(market, mandate_id, quantity)]
    reply = await bus.request(CHAT, {"slug": agent.slug, "message": "buy the cup"}, buyer.ctx, timeout=90)
    assert reply.run.status == "completed", reply.run
    told = [m for body in script.requests for m in body["messages"] if m["role"] == "tool"]
    return json.loads(told[-1]["content"])


async def test_agent_x_of_org_a_buys_from_org_bs_agent_over_a2a_with_an_ap2_mandate(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    org_a, org_b = owner, stranger
    x = await ready(bus, gateway, org_a, org_b, model_server)
    agent, market = x.agent, x.market
    card = await fetch_card(market.shop)
    [ap2] = [e for e in card.capabilities.extensions if e.uri == AP2_EXTENSION_URI]
    assert list(ap2.params["roles"]) == ["merchant"]
    assert ap2.params["jwks_uri"] == f"{gateway}/v1/ap2/{org_b.org_id}/jwks.json"

    paid = await buy(bus, org_a, agent, x.script, market, x.mandate_id)
    assert paid.get("status") == "paid" and paid["amount_minor"] == 1800 and paid["currency"] == "USD", paid
    assert verify_receipt(paid["receipt_jwt"], await published_keys(gateway, org_b)) == paid["receipt"]
    assert paid["receipt"]["status"] == "Success" and paid["receipt"]["iss"] == str(org_b.org_id)
    assert market.shop.script.requests == []  # the merchant answered, not B's model

    b_receipt = await caller_for(gateway, org_b)  # B's commerce keeps the receipt the tool cites
    kept = await b_receipt.http.get(f"/v1/ap2/receipts/{paid['receipt_id']}")
    await b_receipt.http.aclose()
    assert kept.status_code == 200 and kept.json()["receipt_jwt"] == paid["receipt_jwt"]

    a_mandates = await events_of(bus, org_a, "mandate_event", 2)
    assert sorted(m["mandateType"] for m in a_mandates) == ["closed", "open"]
    [checked] = await events_of(bus, org_a, "price_event", 1)
    assert checked["withinBudget"] is True and checked["currentPrice"] == 1800
    [spent] = await events_of(bus, org_a, "payment_event", 1)
    assert spent["direction"] == "outgoing" and spent["receiptId"] == paid["receipt_id"]
    b_mandates = await events_of(bus, org_b, "mandate_event", 2)
    assert sorted(m["action"] for m in b_mandates) == ["presented", "verified"]
    [sold] = await events_of(bus, org_b, "payment_event", 1)
    assert sold["direction"] == "incoming" and sold["amountMinor"] == 1800
    for event in [*a_mandates, checked, spent, *b_mandates, sold]:
        assert event["protocol"] == "ap2", event
    talked = await events_of(bus, org_b, "communication_event", 2)  # the two A2A messages B's agent answered
    assert sorted(m["messageType"] for m in talked) == ["ap2_checkout", "ap2_payment"]
    links = await bus.request(CONNECTION_QUERY, {"thing_id": str(agent.id), "direction": "out",
                                                 "types": ["transacted"]}, org_a.ctx)
    [link] = links.connections
    assert link.metadata["protocol"] == "ap2" and link.metadata["receiptId"] == paid["receipt_id"]

    window = {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
              "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    b_revenue = await bus.request(REVENUE, window, org_b.ctx)
    assert [(r.protocol, r.count, float(r.total)) for r in b_revenue.totals] == [("ap2", 1, 18.0)], b_revenue
    a_revenue = await bus.request(REVENUE, window, org_a.ctx)
    assert "ap2" not in a_revenue.by_protocol  # A's purchase is spending
