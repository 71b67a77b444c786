"""A paid chat that streams: `Accept: text/event-stream` on `/x402/{org}/agents/{slug}/chat`, paid with the
OFFICIAL x402 client, answers AG-UI events (as the unpaid streaming chat does), settled before the first byte,
with `PAYMENT-RESPONSE` on the stream's headers. Unpaid or refused, it is a 402 like any paid route.
"""

from typing import Any

import httpx
from ag_ui.core import EventType
from eth_account import Account as EthAccount
from x402.http.utils import decode_payment_response_header

from shared.contracts.commerce.x402 import X402_PRICE_SET
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent  # noqa: F401 (fixture)
from tests.agents.scripted_model import ScriptedModel
from tests.gateway.conftest import assert_problem  # noqa: F401 (fixture)
from tests.gateway.test_agui import STREAM, read_all, text_of, well_formed
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)
from tests.x402.test_resource_paid import FUNDS, PRICE, balance, payer, paying_client, seller  # noqa: F401


async def test_a_paid_chat_streams_after_the_payment(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                                     payer: Any, model_server: ScriptedModel) -> None:  # noqa: F811
    model, _ = model_server.script({"text": "Paid, and streamed."})
    agent = await make_agent(bus, seller, model)
    price = await bus.request(X402_PRICE_SET, {"resource": "agents/{slug}/chat", "amount": PRICE,
                                               "pay_to": EthAccount.create().address,
                                               "mime_type": "text/event-stream"}, seller.ctx)
    path = f"/x402/{price.org_slug}/agents/{agent.slug}/chat"
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        unpaid = await http.post(path, json={"message": "Hi"}, headers=STREAM)
    assert_problem(unpaid, 402, "payment_required")  # not a stream until paid

    async with paying_client(gateway, payer, price) as client, \
            client.stream("POST", path, json={"message": "Hi"}, headers=STREAM) as response:
        settled = decode_payment_response_header(response.headers["PAYMENT-RESPONSE"])
        assert settled.success and settled.transaction.startswith("0x")
        assert await balance(bus, seller, payer.address) == FUNDS - PRICE  # paid before the body is read
        events = await read_all(response)
    well_formed(events)
    assert events[-1].type == EventType.RUN_FINISHED
    assert list(text_of(events).values()) == ["Paid, and streamed."]
    assert await balance(bus, seller, price.pay_to) == PRICE


async def test_stream_true_in_the_body_streams_too(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                                   payer: Any, model_server: ScriptedModel) -> None:  # noqa: F811
    model, _ = model_server.script({"text": "Streamed by body."})
    agent = await make_agent(bus, seller, model)
    price = await bus.request(X402_PRICE_SET, {"resource": f"agents/{agent.slug}/chat", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, seller.ctx)
    async with paying_client(gateway, payer, price) as client, \
            client.stream("POST", f"/x402/{price.org_slug}/agents/{agent.slug}/chat",
                          json={"message": "Hi", "stream": True}) as response:
        assert "PAYMENT-RESPONSE" in response.headers
        events = await read_all(response)
    assert list(text_of(events).values()) == ["Streamed by body."]


async def test_a_streamed_chat_of_a_missing_agent_is_not_charged(bus: BusClient, gateway: str,  # noqa: F811
                                                                 seller: Account, payer: Any) -> None:  # noqa: F811
    price = await bus.request(X402_PRICE_SET, {"resource": "agents/{slug}/chat", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, seller.ctx)
    async with paying_client(gateway, payer, price) as client:
        response = await client.post(f"/x402/{price.org_slug}/agents/nobody/chat", json={"message": "Hi"},
                                     headers=STREAM)
    assert_problem(response, 404)
    assert await balance(bus, seller, payer.address) == FUNDS
