"""AP2 checkout mandates over A2A, and AP2 exchanges kept as tasks (issue #22 over issue #19's server).

The official a2a-sdk client, over real HTTP through the gateway, talks to org B's merchant agent: a checkout
(`ap2.CheckoutRequest`), then a closed checkout mandate for it (`ap2.mandates.CheckoutMandateSdJwt` +
`checkout_id`, chains built with sd-jwt / jwcrypto in tests/ap2/chains.py) answered with a checkout receipt
(`ap2.CheckoutReceipt`) whose signature verifies with B's published JWKS; a mandate its checkout breaks is a
`failed` task naming the reason; both mandates in one message give both receipts. Every such task is fetched
again with `get_task` and listed with `list_tasks`; another org's key cannot fetch them (`TaskNotFound`).
"""

import json
from typing import Any
from uuid import uuid4

import httpx
import pytest
from a2a.helpers import get_data_parts, new_data_part
from a2a.types.a2a_pb2 import (
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError

from services.commerce.ap2 import schemas
from shared.contracts.a2a import A2A_STEPS, A2aTaskTerminal
from shared.contracts.agents import CHAT, EXTERNAL_ADD
from shared.contracts.agents.ap2 import (
    CHECKOUT_ID_KEY,
    CHECKOUT_KEY,
    CHECKOUT_MANDATE_KEY,
    CHECKOUT_RECEIPT_KEY,
    CHECKOUT_REQUEST_KEY,
    ERROR_KEY,
    PAYMENT_MANDATE_KEY,
    RECEIPT_KEY,
)
from shared.contracts.commerce.ap2 import AP2_TRUST_ADD
from shared.contracts.commerce.products import PRODUCT_CREATE
from shared.kernel.envelope import Protocol
from shared.runtime.client import BusClient
from tests.a2a.conftest import Published, a2a_client, publish
from tests.agents.agent_fixtures import owner, stranger  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.ap2.chains import (
    Purchase,
    checkout_reference,
    close,
    close_checkout,
    jwks,
    key,
    open_checkout_mandate,
    open_mandate,
)
from tests.ap2.test_e2e_a2a import BUDGET, published_keys, shopper
from tests.ap2.test_merchant import RANGE, verify_receipt
from tests.gateway.conftest import caller_for
from tests.tenancy.conftest import Account, unique
from tests.x402.test_prices import events_of

pytestmark = pytest.mark.timeout(300)  # a dozen HTTP round trips through the gateway: minutes on a loaded machine


def one_cup(product_id: str) -> dict[str, Any]:
    """`checkout.line_items`: one unit of this product."""
    return {"type": "checkout.line_items", "items": [{"id": "cup", "quantity": 1, "acceptable_items": [
        {"id": product_id, "title": "Cup"}]}]}


def _data(parts: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in get_data_parts(list(parts)):
        found.update(item)
    return found


def answer_of(task: Task) -> dict[str, Any]:
    """The data the merchant answered with: the artifact's (completed) or the status message's (failed)."""
    return _data([*task.status.message.parts, *(p for a in task.artifacts for p in a.parts)])


async def send(client: Any, data: dict[str, Any]) -> Task:
    """One AP2 message (each key a data part of its own) to the merchant agent; its ended task."""
    message = Message(role=Role.ROLE_USER, message_id=str(uuid4()),
                      parts=[new_data_part({k: v}, "application/json") for k, v in data.items()])
    events = [event async for event in client.send_message(SendMessageRequest(message=message))]
    assert events and events[-1].HasField("task"), events
    return events[-1].task


class Shop:
    """Org B's merchant agent selling one product, trusting one credential provider; the shopping agent's key."""

    def __init__(self, agent: Published, product_id: str) -> None:
        self.agent, self.product_id = agent, product_id
        self.issuer, self.holder = key("cp-a2a"), key("agent-a2a")

    async def checkout(self, client: Any, quantity: int = 1) -> tuple[dict[str, Any], Purchase]:
        task = await send(client, {CHECKOUT_REQUEST_KEY: {"items": [{"id": self.product_id, "quantity": quantity}]}})
        assert task.status.state == TaskState.TASK_STATE_COMPLETED, task
        offer = answer_of(task)[CHECKOUT_KEY]
        return offer, Purchase(offer["merchant_id"], offer["checkout_hash"], offer["nonce"], int(offer["amount"]),
                               id=offer["checkout_id"])

    def open_checkout(self, merchant_id: str) -> str:
        """An open checkout mandate for one unit of the product, at this merchant only."""
        return open_checkout_mandate(self.issuer, self.holder, [one_cup(self.product_id), {
            "type": "checkout.allowed_merchants", "allowed": [{"id": merchant_id, "name": "Shop"}]}])


@pytest.fixture
async def shop(bus: BusClient, gateway: str, owner: Account, model_server: ScriptedModel) -> Shop:  # noqa: F811
    product = await bus.request(PRODUCT_CREATE, {"name": "Cup", "price": 1200, "currency": "usd"}, owner.ctx)
    agent = await publish(bus, gateway, owner, model_server, tools=["ap2_merchant"])
    made = Shop(agent, str(product.id))
    await bus.request(AP2_TRUST_ADD, {"issuer": "https://cp.test", "jwks": jwks(made.issuer)}, owner.ctx)
    return made


async def test_a_checkout_mandate_over_a2a_gets_a_signed_checkout_receipt_and_tasks_are_kept(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel,  # noqa: F811
    shop: Shop,
) -> None:
    async with a2a_client(shop.agent) as client:
        offer, purchase = await shop.checkout(client)
        root = shop.open_checkout(offer["merchant_id"])
        good = await send(client, {CHECKOUT_MANDATE_KEY: close_checkout(root, shop.holder, purchase,
                                                                        offer["checkout_jwt"]),
                                   CHECKOUT_ID_KEY: offer["checkout_id"]})
        assert good.status.state == TaskState.TASK_STATE_COMPLETED, good
        answered = answer_of(good)
        receipt = answered[CHECKOUT_RECEIPT_KEY]
        assert verify_receipt(answered["checkout_receipt_jwt"], await published_keys(gateway, owner)) == receipt
        assert receipt["status"] == "Success" and receipt["order_id"] == offer["checkout_id"]
        assert receipt["iss"] == offer["merchant_id"] and answered[CHECKOUT_ID_KEY] == offer["checkout_id"]
        assert schemas.errors(schemas.CHECKOUT_RECEIPT, receipt) == []
        assert RECEIPT_KEY not in answered  # a checkout mandate authorizes the contents, it pays nothing

        two, two_purchase = await shop.checkout(client, quantity=2)  # the mandate allows one cup
        bad = await send(client, {CHECKOUT_MANDATE_KEY: close_checkout(root, shop.holder, two_purchase,
                                                                       two["checkout_jwt"]),
                                  CHECKOUT_ID_KEY: two["checkout_id"]})
        assert bad.status.state == TaskState.TASK_STATE_FAILED, bad
        refusal = answer_of(bad)[ERROR_KEY]
        assert (refusal["code"], refusal["details"]["reason"]) == ("mandate_refused", "line_items"), refusal
        assert bad.status.message.parts[0].text == refusal["message"] and not bad.artifacts

    async with a2a_client(shop.agent, "HTTP+JSON") as client:  # fetched again, on the other binding
        again = await client.get_task(GetTaskRequest(id=good.id))
        assert (again.id, again.context_id, again.status.state) == (good.id, good.context_id, good.status.state)
        assert answer_of(again) == answered and again.artifacts[0].name == "ap2"
        assert again.history[0].role == Role.ROLE_USER and CHECKOUT_MANDATE_KEY in _data(again.history[0].parts)
        kept = _data(again.history[0].parts)[CHECKOUT_MANDATE_KEY]  # the credential itself is never stored
        assert kept.startswith("sha256:") and len(kept) == 71, kept
        failed = await client.get_task(GetTaskRequest(id=bad.id, history_length=0))
        assert failed.status.state == TaskState.TASK_STATE_FAILED and answer_of(failed)[ERROR_KEY] == refusal
        assert not failed.history
        listed = await client.list_tasks(ListTasksRequest(include_artifacts=True))
        states = {t.id: t.status.state for t in listed.tasks}
        assert states[good.id] == TaskState.TASK_STATE_COMPLETED and states[bad.id] == TaskState.TASK_STATE_FAILED
        assert len(states) == 4 and listed.total_size == 4  # two checkouts, two mandates
        done = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_FAILED))
        assert [t.id for t in done.tasks] == [bad.id]

    theirs = await publish(bus, gateway, stranger, model_server)  # another org, at its own agent's URL
    async with a2a_client(theirs) as client:
        for task in (good, bad):
            with pytest.raises(TaskNotFoundError):
                await client.get_task(GetTaskRequest(id=task.id))
        assert good.id not in {t.id for t in (await client.list_tasks(ListTasksRequest())).tasks}
    async with httpx.AsyncClient(timeout=30) as http:  # and at org B's URL its key is refused outright
        body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": good.id}}
        refused = await http.post(shop.agent.base_url, json=body, headers={**shop.agent.headers(stranger.key),
                                                                            "A2A-Version": "1.0"})
        assert refused.status_code == 403, refused.text

    talked = await events_of(bus, owner, "communication_event", 4)
    assert sorted((m["messageType"], m["state"]) for m in talked) == [
        ("ap2_checkout", "TASK_STATE_COMPLETED"), ("ap2_checkout", "TASK_STATE_COMPLETED"),
        ("ap2_checkout_mandate", "TASK_STATE_COMPLETED"), ("ap2_checkout_mandate", "TASK_STATE_FAILED")]
    assert {m["taskId"] for m in talked} >= {good.id, bad.id}


async def test_both_mandates_in_one_message_check_out_then_pay(
    bus: BusClient, gateway: str, owner: Account, shop: Shop  # noqa: F811
) -> None:
    async with a2a_client(shop.agent) as client:
        offer, purchase = await shop.checkout(client)
        root = shop.open_checkout(offer["merchant_id"])
        paying = open_mandate(shop.issuer, shop.holder, [RANGE], reference=checkout_reference(root))
        both = await send(client, {
            CHECKOUT_MANDATE_KEY: close_checkout(root, shop.holder, purchase, offer["checkout_jwt"]),
            PAYMENT_MANDATE_KEY: close(paying, shop.holder, purchase), CHECKOUT_ID_KEY: offer["checkout_id"]})
        assert both.status.state == TaskState.TASK_STATE_COMPLETED, both
        answered, keys = answer_of(both), await published_keys(gateway, owner)
        assert verify_receipt(answered["checkout_receipt_jwt"], keys)["order_id"] == offer["checkout_id"]
        assert verify_receipt(answered["receipt_jwt"], keys) == answered[RECEIPT_KEY]
        assert answered[RECEIPT_KEY]["status"] == "Success"

        again = await send(client, {  # the checkout is paid: the checkout receipt is not signed twice either
            CHECKOUT_MANDATE_KEY: close_checkout(root, shop.holder, purchase, offer["checkout_jwt"]),
            CHECKOUT_ID_KEY: offer["checkout_id"]})
        assert again.status.state == TaskState.TASK_STATE_FAILED
        assert answer_of(again)[ERROR_KEY]["details"]["reason"] == "nonce_reused"
        kept = await client.get_task(GetTaskRequest(id=both.id))
        assert answer_of(kept) == answered
        odd = Message(role=Role.ROLE_USER, message_id=str(uuid4()), context_id="not-a-context-of-ours",
                      parts=[new_data_part({CHECKOUT_REQUEST_KEY: {"items": []}}, "application/json")])
        with pytest.raises(InvalidParamsError) as bad:  # a typed refusal, no task stored for it
            [event async for event in client.send_message(SendMessageRequest(message=odd))]
        assert "contextId" in str(bad.value)
    with pytest.raises(A2aTaskTerminal):  # answered without a run: no steps to stream (a typed refusal)
        await bus.request(A2A_STEPS, {"agent": shop.agent.slug, "id": both.id}, owner.ctx, protocol=Protocol.A2A)


async def test_the_shopping_agent_checks_out_with_its_checkout_mandate_then_pays(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    buyer, seller = owner, stranger
    product = await bus.request(PRODUCT_CREATE, {"name": "Cup", "price": 1200, "currency": "usd"}, seller.ctx)
    shop = await publish(bus, gateway, seller, model_server, tools=["ap2_merchant"])
    agent, script = await shopper(bus, buyer, model_server)
    a = await caller_for(gateway, buyer)
    checkout_mandate = await a.http.post("/v1/ap2/mandates", json={"agent_id": str(agent.id), "kind": "checkout",
                                                                    "constraints": [one_cup(str(product.id)), {
                                                                        "type": "checkout.allowed_merchants",
                                                                        "allowed": [{"id": str(seller.org_id),
                                                                                     "name": "Shop"}]}]})
    assert checkout_mandate.status_code == 201, checkout_mandate.text
    payment_mandate = await a.http.post("/v1/ap2/mandates", json={
        "agent_id": str(agent.id), "constraints": BUDGET, "checkout_mandate_id": checkout_mandate.json()["id"]})
    await a.http.aclose()
    assert payment_mandate.status_code == 201, payment_mandate.text
    b = await caller_for(gateway, seller)
    trusted = await b.http.post("/v1/ap2/trust", json={"issuer": str(buyer.org_id),
                                                       "jwks": await published_keys(gateway, buyer)})
    await b.http.aclose()
    assert trusted.status_code == 201, trusted.text
    added = await bus.request(EXTERNAL_ADD, {"card_url": shop.base_url, "slug": unique("shop"),
                                             "api_key": seller.key}, buyer.ctx, timeout=30)

    async def buy(quantity: int) -> dict[str, Any]:
        def reply(body: dict[str, Any], number: int) -> dict[str, Any]:
            if any(m["role"] == "tool" for m in body["messages"]):
                return {"text": "done"}
            return {"tool_calls": [("ap2_purchase", {
                "merchant": added.slug, "mandate_id": payment_mandate.json()["id"],
                "checkout_mandate_id": checkout_mandate.json()["id"],
                "items": [{"product_id": str(product.id), "quantity": quantity}]})]}

        script.replies = [reply]
        answer = await bus.request(CHAT, {"slug": agent.slug, "message": "buy the cup"}, buyer.ctx, timeout=90)
        assert answer.run.status == "completed", answer.run
        told = [m for body in script.requests for m in body["messages"] if m["role"] == "tool"]
        return json.loads(told[-1]["content"])

    two = await buy(2)  # the checkout mandate allows one cup: refused before anything is signed or presented
    assert two["error"]["code"] == "mandate_refused" and two["error"]["reason"] == "line_items", two
    paid = await buy(1)
    assert paid.get("status") == "paid" and paid["amount_minor"] == 1200, paid
    keys = await published_keys(gateway, seller)
    assert verify_receipt(paid["checkout_receipt_jwt"], keys) == paid["checkout_receipt"]
    assert paid["checkout_receipt"]["order_id"] == paid["checkout_id"]
    assert verify_receipt(paid["receipt_jwt"], keys) == paid["receipt"] and paid["receipt"]["status"] == "Success"
    assert shop.script.requests == []  # the merchant answered, not B's model
    actions = sorted((e["action"], e["kind"]) for e in await events_of(bus, seller, "mandate_event", 4))
    assert actions == [("presented", "checkout"), ("presented", "payment"), ("verified", "checkout"),
                       ("verified", "payment")]
