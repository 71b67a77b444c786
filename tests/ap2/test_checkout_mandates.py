"""AP2 v2 checkout mandates and V1 compatibility, on the real stack.

A person grants an agent an open checkout mandate (which items, which merchants); the agent closes it for exactly
one merchant-signed checkout; the merchant accepts it with a signed checkout receipt, then the payment mandate
pays the same checkout. What the checkout mandate forbids is refused, by the agent and by the merchant. V1
IntentMandate / CartMandate / PaymentMandate messages are accepted structurally, mapped to intent|cart, marked
unsigned unless the merchant verified its own cart signature, over the bus and the gateway.
"""

import json
from typing import Any

import asyncpg
import httpx
import pytest

from services.commerce.ap2 import schemas
from shared.contracts.commerce.ap2 import (
    AP2_CHECKOUT_CREATE,
    AP2_CLOSE,
    AP2_GRANT,
    AP2_JWKS,
    AP2_PRESENT,
    AP2_TRUST_ADD,
    AP2_V1_ACCEPT,
    MandateRefused,
)
from shared.kernel.envelope import Protocol
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent
from tests.ap2.chains import (
    Purchase,
    checkout_reference,
    close,
    close_checkout,
    graph_synced,
    open_checkout_mandate,
)
from tests.ap2.test_agent import holding
from tests.ap2.test_merchant import RANGE, Merchant, merchant, verify_receipt  # noqa: F401 (fixture)
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account, admin  # noqa: F401 (fixtures)
from tests.x402.test_prices import events_of

MUG, TEA = {"id": "sku-mug", "title": "Mug", "price": 900}, {"id": "sku-tea", "title": "Tea", "price": 600}
LINE_ITEMS = {"type": "checkout.line_items", "items": [
    {"id": "cup", "acceptable_items": [{"id": "sku-mug", "title": "Mug"}], "quantity": 1}]}


async def checkout(bus: BusClient, shop: Account, *items: dict[str, Any]) -> Any:
    return await bus.request(AP2_CHECKOUT_CREATE, {"amount": sum(i["price"] for i in items), "currency": "USD",
                                                   "items": list(items)}, shop.ctx, protocol=Protocol.AP2)


async def test_an_agent_checks_out_with_a_checkout_mandate_then_pays(
    bus: BusClient, owner: Account, stranger: Account, admin: asyncpg.Connection, gateway: str  # noqa: F811
) -> None:
    agent = await make_agent(bus, owner, "openai:unused", deploy=False)
    rules = [LINE_ITEMS, {"type": "checkout.allowed_merchants", "allowed": [
        {"id": str(stranger.org_id), "name": "Shop"}]}]
    granted = await bus.request(AP2_GRANT, {"agent_id": str(agent.id), "kind": "checkout", "constraints": rules},
                                owner.ctx)
    assert granted.mandate["vct"] == "mandate.checkout.open.1"
    assert schemas.errors(schemas.OPEN_CHECKOUT, granted.mandate) == []
    published = await bus.request(AP2_JWKS, {}, owner.ctx, protocol=Protocol.AP2)
    await bus.request(AP2_TRUST_ADD, {"issuer": granted.issuer, "jwks": published.model_dump()}, stranger.ctx)

    made = await checkout(bus, stranger, MUG)
    closed = await bus.request(AP2_CLOSE, {"mandate_id": str(granted.id), "checkout_jwt": made.checkout_jwt,
                                           "nonce": made.nonce}, holding(owner.org_id, agent.id), protocol=Protocol.AP2)
    assert closed.closed["checkout_hash"] == made.checkout_hash
    assert schemas.errors(schemas.CHECKOUT, closed.closed) == []
    receipt = await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "mandate": closed.mandate,
                                              "kind": "checkout"}, stranger.ctx, protocol=Protocol.AP2)
    assert receipt.kind == "checkout" and receipt.receipt["order_id"] == str(made.id)
    assert schemas.errors(schemas.CHECKOUT_RECEIPT, receipt.receipt) == []
    async with httpx.AsyncClient(base_url=gateway) as http:
        keys = (await http.get(f"/v1/ap2/{stranger.org_id}/jwks.json")).json()
    assert verify_receipt(receipt.receipt_jwt, keys) == receipt.receipt
    with pytest.raises(MandateRefused) as again:  # one checkout mandate per checkout
        await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "mandate": closed.mandate, "kind": "checkout"},
                          stranger.ctx, protocol=Protocol.AP2)
    assert again.value.details["reason"] == "checked_out"
    assert await admin.fetchval("SELECT status FROM commerce.ap2_checkouts WHERE id = $1", made.id) == "open"

    other = await checkout(bus, stranger, TEA)
    with pytest.raises(MandateRefused) as tea:  # the agent refuses before signing what the mandate forbids
        await bus.request(AP2_CLOSE, {"mandate_id": str(granted.id), "checkout_jwt": other.checkout_jwt,
                                      "nonce": other.nonce}, holding(owner.org_id, agent.id), protocol=Protocol.AP2)
    assert tea.value.details["reason"] == "line_items"

    await graph_synced(admin, stranger.org_id)
    things = [json.loads(t["properties"]) for t in await admin.fetch(
        "SELECT properties FROM graph.things WHERE org_id = $1 AND type = 'mandate'", stranger.org_id)]
    assert sorted((t["mandateType"], t["kind"]) for t in things) == [("closed", "checkout"), ("open", "checkout")]
    rows = await admin.fetch("SELECT kind, claims FROM commerce.ap2_mandates WHERE org_id = $1", stranger.org_id)
    for row in rows:
        schema = schemas.OPEN_CHECKOUT if row["kind"] == "open" else schemas.CHECKOUT
        assert schemas.errors(schema, json.loads(row["claims"])) == []
    actions = sorted(e["action"] for e in await events_of(bus, stranger, "mandate_event", 4))
    assert actions == ["presented", "presented", "rejected", "verified"]


async def test_the_merchant_refuses_a_checkout_its_checkout_mandate_does_not_allow(
    bus: BusClient, merchant: Merchant  # noqa: F811
) -> None:
    shop = merchant.account
    elsewhere = open_checkout_mandate(merchant.issuer, merchant.agent, [LINE_ITEMS, {
        "type": "checkout.allowed_merchants", "allowed": [{"id": "another-shop", "name": "Another"}]}])
    only_mugs = open_checkout_mandate(merchant.issuer, merchant.agent, [LINE_ITEMS])
    cases = [(elsewhere, [MUG], "allowed_merchants"), (only_mugs, [TEA], "line_items"),
             (only_mugs, [MUG, MUG], "line_items")]  # two mugs, a quantity of one
    for root, items, reason in cases:
        made = await checkout(bus, shop, *items)
        purchase = Purchase(made.merchant_id, made.checkout_hash, made.nonce, made.amount, id=made.id)
        with pytest.raises(MandateRefused) as raised:
            await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "kind": "checkout", "mandate":
                                            close_checkout(root, merchant.agent, purchase, made.checkout_jwt)},
                              shop.ctx, protocol=Protocol.AP2)
        assert raised.value.details["reason"] == reason
    made = await checkout(bus, shop, MUG)
    purchase = Purchase(made.merchant_id, made.checkout_hash, made.nonce, made.amount, id=made.id)
    other = await checkout(bus, shop, MUG)
    with pytest.raises(MandateRefused) as raised:  # a checkout mandate for another checkout
        await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "kind": "checkout", "mandate": close_checkout(
            only_mugs, merchant.agent, purchase, other.checkout_jwt)}, shop.ctx, protocol=Protocol.AP2)
    assert raised.value.details["reason"] == "checkout_hash"
    with pytest.raises(MandateRefused) as raised:  # a payment mandate is not a checkout mandate
        await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "kind": "checkout", "mandate": close(
            merchant.mandate(RANGE), merchant.agent, purchase)}, shop.ctx, protocol=Protocol.AP2)
    assert raised.value.details["reason"] == "invalid_mandate"
    accepted = await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "kind": "checkout", "mandate":
                                               close_checkout(only_mugs, merchant.agent, purchase, made.checkout_jwt)},
                                 shop.ctx, protocol=Protocol.AP2)
    paid = await merchant.present(purchase, close(merchant.mandate(RANGE, reference=checkout_reference(only_mugs)),
                                                  merchant.agent, purchase))
    assert (accepted.kind, paid.kind, paid.checkout_id) == ("checkout", "payment", made.id)


INTENT = {"natural_language_description": "Red basketball shoes", "merchants": ["Shoe Shop"], "skus": ["sku-1"],
          "user_cart_confirmation_required": False, "intent_expiry": "2100-01-01T00:00:00Z"}


def cart(merchant_authorization: str | None = None) -> dict[str, Any]:
    total = {"label": "Total", "amount": {"currency": "USD", "value": 120.0}}
    return {"contents": {"id": "cart-1", "user_cart_confirmation_required": True, "cart_expiry": "2100-01-01T00:00:00Z",
                         "merchant_name": "Shoe Shop", "payment_request": {
                             "method_data": [{"supported_methods": "CARD"}],
                             "details": {"id": "order-1", "display_items": [total], "total": total}}},
            **({"merchant_authorization": merchant_authorization} if merchant_authorization else {})}


PAYMENT = {"payment_mandate_contents": {
    "payment_mandate_id": "pm-1", "payment_details_id": "order-1", "merchant_agent": "Shoe Shop",
    "payment_details_total": {"label": "Total", "amount": {"currency": "USD", "value": 120.0}},
    "payment_response": {"request_id": "order-1", "method_name": "CARD"}},
    "user_authorization": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln~"}


async def test_v1_mandates_are_accepted_mapped_and_marked_unsigned(
    bus: BusClient, owner: Account, gateway: str, admin: asyncpg.Connection  # noqa: F811
) -> None:
    async def accept(body: dict[str, Any]) -> Any:
        return await bus.request(AP2_V1_ACCEPT, body, owner.ctx, protocol=Protocol.AP2)

    intent = await accept({"mandate": {"ap2.mandates.IntentMandate": INTENT}})  # as an A2A data part carries it
    assert (intent.v1_type, intent.mandate_type, intent.signed, intent.signature_present) == \
        ("IntentMandate", "intent", False, False)
    assert intent.mapped["intent"]["autoExecute"] is True and intent.mapped["intent"]["skus"] == ["sku-1"]
    ours = await bus.request(AP2_CHECKOUT_CREATE, {"amount": 12000, "currency": "USD"}, owner.ctx)
    signed = await accept({"type": "CartMandate", "mandate": cart(ours.checkout_jwt)})  # signed by this merchant
    foreign = await accept({"type": "CartMandate", "mandate": cart("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")})
    assert (signed.mandate_type, signed.signed) == ("cart", True)
    assert (foreign.signed, foreign.signature_present) == (False, True)
    assert (signed.mapped["total"], signed.mapped["currency"], signed.mapped["items"][0]["label"]) == \
        (120.0, "USD", "Total")
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {owner.key}"}) as http:
        answer = await http.post("/v1/ap2/v1/mandates", json={"type": "PaymentMandate", "mandate": PAYMENT})
        assert answer.status_code == 201, answer.text
        assert (answer.json()["mandate_type"], answer.json()["signed"]) == ("cart", False)
        for bad, reason in (({"type": "CartMandate", "mandate": {"contents": {}}}, "invalid_mandate"),
                            ({"mandate": INTENT}, "malformed"),
                            ({"type": "IntentMandate", "mandate": {**INTENT, "intent_expiry": "2001-01-01T00:00:00Z"}},
                             "expired")):
            refused = await http.post("/v1/ap2/v1/mandates", json=bad)
            assert refused.status_code == 403 and refused.json()["details"]["reason"] == reason, refused.text
    stored = await admin.fetch("SELECT mandate_type, version, signed, claims FROM commerce.ap2_mandates "
                               "WHERE org_id = $1 ORDER BY created_at", owner.org_id)
    assert [(r["mandate_type"], r["version"], r["signed"]) for r in stored] == [
        ("intent", 1, False), ("cart", 1, True), ("cart", 1, False), ("payment", 1, False)]
    assert "user_authorization" not in stored[3]["claims"]  # a presentation of the user's credential is not kept
    await graph_synced(admin, owner.org_id)
    things = [json.loads(t["properties"]) for t in await admin.fetch(
        "SELECT properties FROM graph.things WHERE org_id = $1 AND type = 'mandate'", owner.org_id)]
    assert sorted((t["mandateType"], t["v1Type"], t["signed"]) for t in things) == [
        ("cart", "CartMandate", False), ("cart", "CartMandate", True), ("cart", "PaymentMandate", False),
        ("intent", "IntentMandate", False)]
    accepted = [e for e in await events_of(bus, owner, "mandate_event", 7) if e["action"] == "accepted"]
    assert sorted(e["mandateType"] for e in accepted) == ["cart", "cart", "cart", "intent"]
    assert all(e["version"] == 1 and e["protocol"] == "ap2" for e in accepted)
