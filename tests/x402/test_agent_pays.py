"""An agent of one org pays for another org's priced route through the gateway, within its budget, on the chain.

Everything is real: the scripted model (real HTTP) asks for the `x402_fetch` tool; the agents service
fetches the seller's `/x402/{org}/knowledge/search` with the official x402 client, whose signer asks
commerce to sign from the buyer's wallet; the gateway's resource server verifies and settles through
commerce's facilitator on the local EVM. The token balances are read from the chain.
"""

import asyncio
import json
from typing import Any

import pytest
from eth_account import Account

from services.agents.tools_access import ToolRefused
from services.agents.tools_x402 import _refuse_private
from shared.contracts.agents import CHAT
from shared.contracts.commerce.wallet import BUDGET_GET, BUDGET_SET, WALLET_CREATE
from shared.contracts.commerce.x402 import X402_PRICE_SET
from shared.contracts.eventlog import QUERY
from shared.contracts.graph import CONNECTION_QUERY, THING_GET
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account as Member, create_org  # noqa: F401 (fixtures)
from tests.x402.conftest import chain_balance, fund

PRICE = 1000
FUNDS = 10_000


@pytest.fixture
async def market(bus: BusClient, owner: Member, stranger: Member, gateway: str) -> dict[str, Any]:  # noqa: F811
    """The buyer (`owner`) with a funded wallet; the seller (`stranger`) pricing its knowledge search."""
    wallet = (await bus.request(WALLET_CREATE, {}, owner.ctx)).address
    await fund(bus, wallet, FUNDS)
    pay_to = Account.create().address
    await bus.request(X402_PRICE_SET, {"resource": "knowledge/search", "amount": PRICE, "pay_to": pay_to}, stranger.ctx)
    return {"wallet": wallet, "pay_to": pay_to, "url": f"{gateway}/x402/{stranger.org_id}/knowledge/search"}


async def processed_payments(bus: BusClient, member: Member, minimum: int) -> list[dict[str, Any]]:
    """The org's `payment_event`s `processed` once there are `minimum` (events come through the outbox; the
    machine may be slow, so each query may take its time)."""
    for _ in range(150):
        page = await bus.request(QUERY, {"types": ["payment_event"], "limit": 100}, member.ctx, timeout=30)
        found = [e.metadata for e in page.events if e.metadata.get("status") == "processed"]
        if len(found) >= minimum:
            return found
        await asyncio.sleep(0.2)
    return found


def fetch_call(url: str) -> dict[str, Any]:
    return {"tool_calls": [("x402_fetch", {"url": url, "method": "POST", "body": {"query": "prices", "k": 3}})]}


async def paying_agent(bus: BusClient, owner: Member, model: str, per_call: int, per_day: int) -> Any:  # noqa: F811
    agent = await make_agent(bus, owner, model, tools=["x402_fetch"],
                             permissions=[{"tool": "x402_fetch", "actions": ["execute"]}])
    await bus.request(BUDGET_SET, {"agent_id": str(agent.id), "per_call": per_call, "per_day": per_day}, owner.ctx)
    return agent


async def ask_to_pay(bus: BusClient, owner: Member, model_server: ScriptedModel, agent: Any,  # noqa: F811
                     url: str, script: Any) -> dict[str, Any]:
    before = len(script.requests)
    run = (await bus.request(CHAT, {"slug": agent.slug, "message": "Search the seller's knowledge."}, owner.ctx,
                             timeout=300)).run
    assert run.status == "completed", run.error
    tool_messages = [m for m in script.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(script.requests) > before and tool_messages
    return json.loads(tool_messages[-1]["content"])


async def test_an_agent_pays_another_orgs_priced_route_within_its_budget(
    bus: BusClient, owner: Member, stranger: Member, model_server: ScriptedModel, market: dict[str, Any]  # noqa: F811
) -> None:
    model, script = model_server.script(lambda body, n: fetch_call(market["url"]) if n % 2 else {"text": "done"})
    agent = await paying_agent(bus, owner, model, per_call=PRICE, per_day=2 * PRICE + PRICE // 2)
    wallet, pay_to = market["wallet"], market["pay_to"]

    paid = await ask_to_pay(bus, owner, model_server, agent, market["url"], script)
    assert paid.get("status") == 200 and "hits" in paid["body"], paid
    assert paid["paid"]["amount"] == PRICE and paid["paid"]["status"] == "settled"
    assert paid["paid"]["pay_to"].lower() == pay_to.lower() and paid["paid"]["transaction"].startswith("0x")
    assert await chain_balance(bus, wallet) == FUNDS - PRICE  # on the chain, by exactly the price
    assert await chain_balance(bus, pay_to) == PRICE

    again = await ask_to_pay(bus, owner, model_server, agent, market["url"], script)
    assert again["paid"]["status"] == "settled" and again["paid"]["transaction"] != paid["paid"]["transaction"]
    assert await chain_balance(bus, wallet) == FUNDS - 2 * PRICE

    refused = await ask_to_pay(bus, owner, model_server, agent, market["url"], script)  # 3000 > 2500 a day
    assert refused["error"]["code"] == "budget_exceeded" and refused["error"]["limit"] == "per_day", refused
    assert await chain_balance(bus, wallet) == FUNDS - 2 * PRICE  # nothing paid
    assert await chain_balance(bus, pay_to) == 2 * PRICE
    budget = await bus.request(BUDGET_GET, {"agent_id": str(agent.id)}, owner.ctx)
    assert budget.spent_last_day == 2 * PRICE

    processed = await processed_payments(bus, owner, 2)
    assert {m["txHash"] for m in processed} == {paid["paid"]["transaction"], again["paid"]["transaction"]}
    assert all(m["protocol"] == "x402" and m["direction"] == "outgoing" and m["amountAtomic"] == str(PRICE)
               and m["resource"] == market["url"] for m in processed)

    links = await bus.request(CONNECTION_QUERY, {"thing_id": str(agent.id), "direction": "out",
                                                 "types": ["transacted"]}, owner.ctx)
    transacted = links.connections
    assert len(transacted) == 2 and len({c.to_id for c in transacted}) == 1
    assert {c.metadata["txHash"] for c in transacted} == {paid["paid"]["transaction"], again["paid"]["transaction"]}
    seller = (await bus.request(THING_GET, {"id": str(transacted[0].to_id)}, owner.ctx)).thing
    assert seller.type == "external_connection" and market["url"].startswith(seller.properties["baseUrl"])


async def test_a_price_over_the_per_call_budget_is_not_paid(
    bus: BusClient, owner: Member, model_server: ScriptedModel, market: dict[str, Any]  # noqa: F811
) -> None:
    model, script = model_server.script(fetch_call(market["url"]), {"text": "too dear"})
    agent = await paying_agent(bus, owner, model, per_call=PRICE - 1, per_day=100 * PRICE)
    refused = await ask_to_pay(bus, owner, model_server, agent, market["url"], script)
    assert refused["error"]["code"] == "budget_exceeded" and refused["error"]["limit"] == "per_call", refused
    assert await chain_balance(bus, market["wallet"]) == FUNDS
    assert await chain_balance(bus, market["pay_to"]) == 0
    budget = await bus.request(BUDGET_GET, {"agent_id": str(agent.id)}, owner.ctx)
    assert budget.spent_last_day == 0  # nothing signed


async def test_an_agent_without_the_permission_or_the_funds_pays_nothing(
    bus: BusClient, owner: Member, platform: Member, model_server: ScriptedModel, market: dict[str, Any]  # noqa: F811
) -> None:
    model, script = model_server.script(fetch_call(market["url"]), {"text": "no"})
    agent = await make_agent(bus, owner, model, tools=["x402_fetch"], permissions=[{"tool": "thing_*"}])
    await bus.request(BUDGET_SET, {"agent_id": str(agent.id), "per_call": PRICE, "per_day": PRICE}, owner.ctx)
    refused = await ask_to_pay(bus, owner, model_server, agent, market["url"], script)
    assert refused["error"]["code"] == "tool_forbidden", refused
    assert (await bus.request(BUDGET_GET, {"agent_id": str(agent.id)}, owner.ctx)).spent_last_day == 0

    poor = await create_org(bus, platform)  # a wallet with no tokens: the seller's facilitator refuses the payment
    wallet = (await bus.request(WALLET_CREATE, {}, poor.ctx)).address
    model, script = model_server.script(fetch_call(market["url"]), {"text": "could not pay"})
    agent = await paying_agent(bus, poor, model, per_call=PRICE, per_day=10 * PRICE)
    unpaid = await ask_to_pay(bus, poor, model_server, agent, market["url"], script)
    assert unpaid.get("status") == 402 and unpaid["paid"]["status"] == "failed", unpaid
    assert unpaid["paid"]["transaction"] is None and unpaid["paid"]["error"]
    assert await chain_balance(bus, wallet) == 0 and await chain_balance(bus, market["pay_to"]) == 0
    budget = await bus.request(BUDGET_GET, {"agent_id": str(agent.id)}, poor.ctx)
    assert budget.spent_last_day == PRICE  # the signature exists until its validBefore: it still counts


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data",
                                 "http://[::1]/x", "http://localhost/x"])
async def test_the_model_cannot_point_x402_fetch_at_this_network_unless_allowed(url: str) -> None:
    with pytest.raises(ToolRefused) as refused:
        await _refuse_private(url, allowed=False)
    assert refused.value.details["reason"] == "private_address"
    await _refuse_private(url, allowed=True)  # an operator's choice (the test stack's gateway is on loopback)
