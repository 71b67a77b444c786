"""An AP2 payment mandate pays AND completes an ACP checkout session (issue #22, "Merchant role"), on the real stack:
the session created through ACP over HTTP, the AP2 checkout signed for it, a closed payment mandate presented. The
receipt verifies with the merchant's published JWKS; the session reads back `completed` with an order naming the
receipt; the sale counts once, as AP2 (one `payment_event` with protocol ap2, none with acp); the order is
announced by webhook. A refusal or a decline leaves the session ready for payment, payable by ACP's `complete`;
ACP's `complete` first makes the presentation `checkout_changed`; both racing: one wins. The session's discount
code is redeemed as it is paid (one used up: `checkout_changed`). Another org presenting against the checkout
finds nothing.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.contracts.commerce.ap2 import AP2_ACP_CHECKOUT, AP2_PRESENT, AP2_TRUST_ADD, MandateRefused
from shared.contracts.commerce.payments import PaymentDeclined
from shared.contracts.commerce.webhooks import WEBHOOK_DELIVERIES, WEBHOOK_SET
from shared.contracts.eventlog import QUERY, REVENUE
from shared.contracts.graph import CONNECTION_QUERY, THING_GET
from shared.kernel.envelope import Protocol
from shared.kernel.errors import NotFound
from tests.acp.conftest import Merchant, card, create_body, eventually, merchant, total  # noqa: F401 (fixture)
from tests.acp.test_delegate_payment import delegate, delegation
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
from tests.ap2.test_merchant import RANGE, verify_receipt
from tests.gateway.conftest import Caller, alice, bob, http  # noqa: F401 (fixtures)

WIDE = {**RANGE, "max": 100000}


class Shop:
    """The merchant's ACP session and the AP2 checkout signed for it; a credential provider it trusts, an agent."""

    def __init__(self, seller: Merchant) -> None:
        self.merchant, self.bus, self.ctx = seller, seller.bus, seller.caller.account.ctx
        self.issuer, self.agent = key("cp-acp-pay"), key("agent-acp-pay")

    async def trust(self) -> None:
        await self.bus.request(AP2_TRUST_ADD, {"issuer": "https://cp.test", "jwks": jwks(self.issuer)}, self.ctx)

    async def ready_session(self, price: int = 1000) -> dict[str, Any]:
        ebook = await self.merchant.product("E-book", price, tax_category="digital")
        session = await self.merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
        assert session["status"] == "ready_for_payment"
        return session

    async def sign(self, session: dict[str, Any]) -> tuple[Any, Purchase]:
        signed = await self.bus.request(AP2_ACP_CHECKOUT, {"session_id": session["id"]}, self.ctx,
                                        protocol=Protocol.AP2)
        return signed, Purchase(signed.merchant_id, signed.checkout_hash, signed.nonce, signed.amount, id=signed.id)

    def chain(self, purchase: Purchase, *constraints: dict[str, Any], reference: str | None = None,
              **changes: Any) -> str:
        return close(open_mandate(self.issuer, self.agent, list(constraints or [WIDE]), reference=reference),
                     self.agent, purchase, **changes)

    async def present(self, purchase: Purchase, chain: str, ctx: Any = None, kind: str = "payment") -> Any:
        return await self.bus.request(AP2_PRESENT, {"checkout_id": str(purchase.id), "mandate": chain, "kind": kind},
                                      ctx or self.ctx, protocol=Protocol.AP2)

    async def refused(self, purchase: Purchase, chain: str) -> str:
        with pytest.raises(MandateRefused) as raised:
            await self.present(purchase, chain)
        return raised.value.details["reason"]

    async def payment_events(self, session_id: str, protocol: str) -> list[Any]:
        now = datetime.now(UTC)
        page = await self.bus.request(QUERY, {"types": ["payment_event"], "protocols": [protocol],
                                              "since": (now - timedelta(hours=1)).isoformat(),
                                              "until": (now + timedelta(hours=1)).isoformat()}, self.ctx)
        return [e for e in page.events if e.metadata.get("checkoutSessionId") == session_id]

    async def pay_by_acp(self, session: dict[str, Any], status: int = 200) -> dict[str, Any]:
        token = await delegate(self.merchant.caller, delegation(session["id"], max_amount=total(session)))
        return await self.merchant.complete(session["id"], {"payment_data": card(token)}, status)


@pytest.fixture
async def shop(merchant: Merchant) -> Shop:  # noqa: F811
    made = Shop(merchant)
    await made.trust()
    return made


async def test_a_payment_mandate_pays_and_completes_the_session(
    shop: Shop, gateway: str, bob: Caller  # noqa: F811
) -> None:
    await shop.bus.request(WEBHOOK_SET, {"url": "http://127.0.0.1:9/hooks"}, shop.ctx)  # the agent platform's
    session = await shop.ready_session()
    signed, purchase = await shop.sign(session)
    chain = shop.chain(purchase)

    with pytest.raises(NotFound):  # another org presenting against this org's checkout
        await shop.present(purchase, chain, bob.account.ctx)
    receipt = await shop.present(purchase, chain)
    async with httpx.AsyncClient(base_url=gateway) as public:
        keys = (await public.get(f"/v1/ap2/{shop.ctx.org_id}/jwks.json")).json()
    claims = verify_receipt(receipt.receipt_jwt, keys)
    assert claims["status"] == "Success" and claims["payment_id"] == str(receipt.id)
    assert receipt.kind == "payment" and receipt.charge_id == claims["psp_confirmation_id"]

    done = await shop.merchant.get(session["id"])  # checked against the ACP schema (CheckoutSessionWithOrder)
    assert done["status"] == "completed"
    order = done["order"]
    assert order["checkout_session_id"] == session["id"] and order["status"] == "confirmed"
    assert order["confirmation"]["receipt_url"] == f"urn:ap2:receipt:{receipt.id}"
    assert total(order) == total(session) == signed.amount

    [event] = await eventually(lambda: shop.payment_events(session["id"], "ap2"))
    meta = event.metadata
    assert (meta["protocol"], meta["status"], meta["orderId"], meta["receiptId"]) == (
        "ap2", "processed", order["id"], str(receipt.id))
    assert (meta["amountMinor"], meta["chargeId"], meta["direction"]) == (1000, receipt.charge_id, "incoming")
    payment = (await shop.bus.request(THING_GET, {"id": str(event.target_id)}, shop.ctx)).thing.properties
    assert (payment["protocol"], payment["status"], payment["amountMinor"], payment["receiptId"]) == (
        "ap2", "processed", 1000, str(receipt.id))
    product = session["line_items"][0]["item"]["id"]
    links = await shop.bus.request(CONNECTION_QUERY, {"thing_id": product, "direction": "in", "types": ["transacted"]},
                                   shop.ctx)
    assert [(c.metadata["protocol"], c.metadata["orderId"]) for c in links.connections] == [("ap2", order["id"])]
    assert await shop.payment_events(session["id"], "acp") == []
    revenue = await shop.bus.request(REVENUE, {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                                               "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
                                     shop.ctx)
    assert [(t.protocol, float(t.total), t.count) for t in revenue.totals] == [("ap2", 10.0, 1)]

    deliveries = (await shop.bus.request(WEBHOOK_DELIVERIES, {"order_id": order["id"]}, shop.ctx)).items
    assert [(d.event_type, d.checkout_session_id) for d in deliveries] == [("order_create", session["id"])]

    assert await shop.refused(purchase, chain) == "nonce_reused"  # the checkout is paid
    assert await shop.refused(purchase, shop.chain(purchase)) == "nonce_reused"
    await shop.pay_by_acp(session, 405)  # ACP finds the session completed
    assert (await shop.merchant.get(session["id"]))["order"]["id"] == order["id"]


async def test_a_refusal_or_a_decline_leaves_the_session_payable_by_acp(shop: Shop) -> None:
    session = await shop.ready_session(1000)
    _, purchase = await shop.sign(session)
    assert await shop.refused(purchase, shop.chain(purchase, {**RANGE, "max": 500})) == "amount_range"
    with pytest.raises(PaymentDeclined):
        await shop.present(purchase, shop.chain(purchase, mandate={"payment_instrument": {
            "id": "pm_card_chargeDeclined", "type": "card", "description": "Declining test card"}}))
    after = await shop.merchant.get(session["id"])
    assert after["status"] == "ready_for_payment" and "order" not in after
    assert after["updated_at"] == session["updated_at"]  # not written at all

    done = await shop.pay_by_acp(session)  # ACP's complete first ...
    assert done["status"] == "completed"
    assert await shop.refused(purchase, shop.chain(purchase)) == "checkout_changed"  # ... then no AP2 payment
    [event] = await eventually(lambda: shop.payment_events(session["id"], "acp"))
    assert event.metadata["orderId"] == done["order"]["id"]
    assert await shop.payment_events(session["id"], "ap2") == []


async def test_a_presentation_racing_acp_complete_pays_once(shop: Shop) -> None:
    session = await shop.ready_session()
    _, purchase = await shop.sign(session)
    token = await delegate(shop.merchant.caller, delegation(session["id"], max_amount=total(session)))
    acp = shop.merchant.send("POST", f"/acp/checkout_sessions/{session['id']}/complete",
                             {"payment_data": card(token)}, definition="CheckoutSessionCompleteRequest")
    ap2, response = await asyncio.gather(shop.present(purchase, shop.chain(purchase)), acp, return_exceptions=True)
    paid_by_ap2 = not isinstance(ap2, BaseException)
    if paid_by_ap2:
        assert response.status_code in (405, 409), response.text
    else:
        assert isinstance(ap2, MandateRefused) and ap2.details["reason"] == "checkout_changed"
        assert response.status_code == 200, response.text
    done = await shop.merchant.get(session["id"])
    assert done["status"] == "completed"
    protocol = "ap2" if paid_by_ap2 else "acp"
    [event] = await eventually(lambda: shop.payment_events(session["id"], protocol))
    assert event.metadata["orderId"] == done["order"]["id"]
    assert await shop.payment_events(session["id"], "acp" if paid_by_ap2 else "ap2") == []


async def test_a_checkout_mandate_then_its_payment_mandate_complete_the_session(shop: Shop) -> None:
    session = await shop.ready_session()
    signed, purchase = await shop.sign(session)
    product = session["line_items"][0]["item"]["id"]
    wanted = {"type": "checkout.line_items", "items": [
        {"id": "wanted", "acceptable_items": [{"id": product, "title": "E-book"}], "quantity": 1}]}
    root = open_checkout_mandate(shop.issuer, shop.agent, [wanted])
    checked = await shop.present(purchase, close_checkout(root, shop.agent, purchase, signed.checkout_jwt),
                                 kind="checkout")
    assert checked.kind == "checkout"
    assert (await shop.merchant.get(session["id"]))["status"] == "ready_for_payment"  # bound, not paid

    assert await shop.refused(purchase, shop.chain(purchase)) == "reference"  # not that checkout mandate's payment
    receipt = await shop.present(purchase, shop.chain(purchase, reference=checkout_reference(root)))
    done = await shop.merchant.get(session["id"])
    assert done["status"] == "completed"
    assert done["order"]["confirmation"]["receipt_url"] == f"urn:ap2:receipt:{receipt.id}"


async def test_the_sessions_discount_code_is_redeemed_as_it_is_paid(shop: Shop) -> None:
    book = await shop.merchant.product("Book", 2000, tax_category="digital")
    made = await shop.merchant.caller.call("POST", "/v1/discounts", {
        "code": "ONCE", "name": "Once only", "kind": "percentage", "percent_off": 10, "max_redemptions": 1})
    assert made.status_code == 201, made.text
    first, second = [await shop.merchant.create(create_body(book, buyer={"email": "reader@example.com"},
                                                            discounts={"codes": ["once"]})) for _ in range(2)]
    assert [total(s, "items_discount") for s in (first, second)] == [200, 200]
    _, paying = await shop.sign(first)
    _, late = await shop.sign(second)
    await shop.present(paying, shop.chain(paying))
    assert (await shop.merchant.caller.call("GET", "/v1/discounts/ONCE")).json()["times_redeemed"] == 1
    assert await shop.refused(late, shop.chain(late)) == "checkout_changed"  # the code is used up
    assert (await shop.merchant.get(second["id"]))["status"] == "ready_for_payment"
    assert (await shop.merchant.caller.call("GET", "/v1/discounts/ONCE")).json()["times_redeemed"] == 1
