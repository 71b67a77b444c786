"""The `ap2_purchase` tool on the real stack: what the open mandate's constraints forbid is refused before anything
is signed or presented (the model is told the constraint), purchases racing under one mandate never exceed its
budget, a merchant whose checkout does not verify with the keys its card names is not paid, and an agent that
does not sell over AP2 is neither a merchant to the tool nor answers AP2 data parts.
"""

import asyncio
import json
from typing import Any

import pytest
from a2a.client.errors import A2AClientError
from a2a.helpers import new_data_part
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest, TaskState
from a2a.utils.errors import A2AError
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.contracts.agents import EXTERNAL_ADD, EXTERNAL_GET
from shared.contracts.agents.ap2 import CHECKOUT_REQUEST_KEY, ERROR_KEY
from shared.runtime.client import BusClient
from tests.a2a.conftest import a2a_client, publish
from tests.agents.agent_fixtures import owner, stranger  # noqa: F401 (fixtures)
from tests.agents.local_server import LocalServer
from tests.agents.scripted_model import ScriptedModel
from tests.ap2.test_e2e_a2a import buy, ready
from tests.tenancy.conftest import Account, unique
from tests.x402.test_prices import events_of

pytestmark = pytest.mark.timeout(300)  # as test_e2e_a2a.py: many HTTP round trips, minutes on a loaded machine


async def test_what_the_mandate_forbids_is_refused_before_anything_is_presented(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    x = await ready(bus, gateway, owner, stranger, model_server, price=1800)
    agent, script, mandate_id, market = x.agent, x.script, x.mandate_id, x.market
    assert (await buy(bus, owner, agent, script, market, mandate_id))["status"] == "paid"

    too_much = await buy(bus, owner, agent, script, market, mandate_id, quantity=2)  # 3600 > the range's 2000
    assert too_much["error"]["code"] == "mandate_refused", too_much
    assert too_much["error"]["reason"] == "amount_range"
    over_budget = await buy(bus, owner, agent, script, market, mandate_id)  # 1800 + 1800 > the budget's 3000
    assert over_budget["error"]["reason"] == "budget"
    checks = await events_of(bus, owner, "price_event", 3)
    assert sorted(c["withinBudget"] for c in checks) == [False, False, True]
    assert len(await events_of(bus, stranger, "payment_event", 1)) == 1
    presented = await events_of(bus, stranger, "mandate_event", 2)  # presented + verified, once: nothing since
    assert sorted(m["action"] for m in presented) == ["presented", "verified"]

    unknown = await buy(bus, owner, agent, script, market, "01a24bb0-0000-7000-8000-000000000000")
    assert unknown["error"]["code"] == "not_found", unknown  # no such mandate granted to it


async def test_racing_purchases_never_exceed_the_budget(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    x = await ready(bus, gateway, owner, stranger, model_server, price=1200)
    agent, script, mandate_id, market = x.agent, x.script, x.mandate_id, x.market
    await asyncio.gather(*(buy(bus, owner, agent, script, market, mandate_id) for _ in range(3)))
    outcomes = [json.loads(m["content"]) for body in script.requests for m in body["messages"] if m["role"] == "tool"]
    paid = [o for o in outcomes if o.get("status") == "paid"]
    refused = [o for o in outcomes if "error" in o]
    assert len(paid) == 2 and len(refused) == 1, outcomes  # 2 x 1200 within 3000, a third is not
    assert refused[0]["error"]["reason"] == "budget"
    assert len({p["receipt_id"] for p in paid}) == 2
    assert len(await events_of(bus, stranger, "payment_event", 2)) == 2


async def test_a_checkout_the_merchants_keys_do_not_sign_is_not_paid(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    x = await ready(bus, gateway, owner, stranger, model_server)
    agent, script, mandate_id, market = x.agent, x.script, x.mandate_id, x.market
    card = (await bus.request(EXTERNAL_GET, {"slug": market.merchant_slug}, owner.ctx)).card
    for extension in card["capabilities"]["extensions"]:  # the same agent, but its card names org A's keys
        extension["params"]["jwks_uri"] = f"{gateway}/v1/ap2/{owner.org_id}/jwks.json"
    server = LocalServer(Starlette(routes=[Route("/card.json", lambda _: JSONResponse(card))]))
    forged = await bus.request(EXTERNAL_ADD, {"card_url": f"{await server.start()}/card.json", "slug": unique("forged"),
                                              "api_key": stranger.key}, owner.ctx, timeout=30)
    try:
        market.merchant_slug = forged.slug
        refused = await buy(bus, owner, agent, script, market, mandate_id)
    finally:
        await server.stop()
    assert refused["error"]["code"] == "ap2_merchant_untrusted", refused
    assert await events_of(bus, owner, "price_event", 0) == []  # no mandate was closed for it


async def test_an_agent_that_does_not_sell_is_no_ap2_merchant(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    x = await ready(bus, gateway, owner, stranger, model_server)
    agent, script, mandate_id, market = x.agent, x.script, x.mandate_id, x.market
    plain = await publish(bus, gateway, stranger, model_server)
    request = SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=unique("m"), parts=[
        new_data_part({CHECKOUT_REQUEST_KEY: {"items": [{"id": market.product_id, "quantity": 1}]}})]))
    async with a2a_client(plain) as client:
        with pytest.raises((A2AError, A2AClientError)):
            async for _ in client.send_message(request):
                pass
    assert plain.script.requests == []  # its model never saw the request either

    bad = SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=unique("m"), parts=[
        new_data_part({CHECKOUT_REQUEST_KEY: {"items": [{"id": "not-a-product", "quantity": 1}]}})]))
    async with a2a_client(market.shop, "HTTP+JSON") as client:
        [event] = [event async for event in client.send_message(bad)]
    assert event.task.status.state == TaskState.TASK_STATE_FAILED
    [*_, data] = event.task.status.message.parts
    assert data.data.struct_value.fields[ERROR_KEY].struct_value.fields["code"].string_value == "invalid"

    added = await bus.request(EXTERNAL_ADD, {"card_url": plain.base_url, "slug": unique("plain"),
                                             "api_key": stranger.key}, owner.ctx, timeout=30)
    market.merchant_slug = added.slug
    refused: dict[str, Any] = await buy(bus, owner, agent, script, market, mandate_id)
    assert refused["error"]["code"] == "ap2_merchant_untrusted", refused
