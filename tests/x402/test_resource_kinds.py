"""Each kind of priced resource, paid with the official x402 client: a knowledge search, an agent's answer.

(A digital product's content is `test_resource_paid.py`.) The paid request runs in the seller's org with the
narrow `service:x402` identity: these tests show it is enough for the one thing sold, and that a paid chat
starts a conversation of its own.
"""

from typing import Any

import pytest
from eth_account import Account as EthAccount

from shared.contracts.agents import CONVERSATION_GET
from shared.contracts.commerce.x402 import X402_PRICE_SET
from shared.contracts.knowledge import ITEM_ADD
from shared.runtime.client import BusClient
from shared.runtime.context import service_actor_id
from tests.agents.agent_fixtures import make_agent  # noqa: F401 (fixture)
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)
from tests.x402.test_resource_paid import FUNDS, PRICE, balance, payer, paying_client, seller  # noqa: F401


async def test_a_paid_knowledge_search(bus: BusClient, gateway: str, seller: Account, payer: Any) -> None:  # noqa: F811
    await bus.request(ITEM_ADD, {"knowledge_type": "document",
                                 "text": "The tide rises twice a day in the bay."}, seller.ctx)
    price = await bus.request(X402_PRICE_SET, {"resource": "knowledge/search", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, seller.ctx)
    async with paying_client(gateway, payer, price) as client:
        response = await client.post(f"/x402/{price.org_slug}/knowledge/search", json={"query": "tide", "k": 3})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["hits"], list)
    assert await balance(bus, seller, payer.address) == FUNDS - PRICE
    assert await balance(bus, seller, price.pay_to) == PRICE


async def test_a_paid_agent_answer(bus: BusClient, gateway: str, seller: Account, payer: Any,  # noqa: F811
                                   model_server: ScriptedModel) -> None:  # noqa: F811
    model, _ = model_server.script({"text": "Paid answer."})
    agent = await make_agent(bus, seller, model)
    price = await bus.request(X402_PRICE_SET, {"resource": f"agents/{agent.slug}/chat", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, seller.ctx)
    async with paying_client(gateway, payer, price) as client:
        response = await client.post(f"/x402/{price.org_slug}/agents/{agent.slug}/chat", json={"message": "Hi"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["reply"] == "Paid answer."
        refused = await client.post(f"/x402/{price.org_slug}/agents/{agent.slug}/chat",
                                    json={"message": "Hi", "thread_id": answer["thread_id"]})
    assert refused.status_code == 422  # a payer names no thread of the seller's
    conversation = await bus.request(CONVERSATION_GET, {"id": answer["thread_id"]}, seller.ctx)
    assert conversation.created_by == service_actor_id("x402")  # the paid request's identity, not a member
    assert await balance(bus, seller, payer.address) == FUNDS - PRICE


@pytest.mark.parametrize("body", [{"message": ""}, {}, {"message": "x", "slug": "other"}])
async def test_a_bad_chat_body_is_refused_before_any_payment(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                                             payer: Any, body: dict) -> None:
    price = await bus.request(X402_PRICE_SET, {"resource": "agents/someone/chat", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, seller.ctx)
    async with paying_client(gateway, payer, price) as client:
        response = await client.post(f"/x402/{price.org_slug}/agents/someone/chat", json=body)
    assert response.status_code == 422
    assert await balance(bus, seller, payer.address) == FUNDS
