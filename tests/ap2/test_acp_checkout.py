"""AP2 checkout mandates for ACP checkout sessions (issue #22's gaps), on the real stack: the merchant signs an AP2
checkout JWT for an ACP session that is ready for payment (its items, total, and the session named), verifiable with
its published JWKS; a shopping agent's closed checkout mandate bound to it is accepted with a checkout receipt,
refused when the mandate does not allow its items or once the session changed (a payment mandate pays and
completes the session: test_acp_payment.py). Another org cannot sign one for the session.
"""

import httpx
import pytest

from services.commerce.ap2 import schemas
from shared.contracts.commerce.acp import CheckoutNotAllowed, CheckoutSessionNotFound
from shared.contracts.commerce.ap2 import AP2_ACP_CHECKOUT, AP2_PRESENT, AP2_TRUST_ADD, MandateRefused
from shared.kernel.envelope import Protocol
from shared.runtime.client import BusClient
from tests.acp.conftest import Merchant, create_body, merchant  # noqa: F401 (fixture)
from tests.ap2.chains import Purchase, close_checkout, jwks, key, open_checkout_mandate
from tests.ap2.test_merchant import verify_receipt
from tests.gateway.conftest import Caller, alice, bob, http  # noqa: F401 (fixtures)


def only(product_id: str, quantity: int = 1) -> dict:
    return {"type": "checkout.line_items", "items": [
        {"id": "wanted", "acceptable_items": [{"id": product_id, "title": "E-book"}], "quantity": quantity}]}


async def test_a_checkout_mandate_binds_to_an_acp_session(
    bus: BusClient, gateway: str, merchant: Merchant, bob: Caller  # noqa: F811
) -> None:
    shop = merchant.caller.account
    ebook = await merchant.product("E-book", 1000, tax_category="digital")
    other = await merchant.product("Atlas", 2500, tax_category="digital")
    session = await merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
    assert session["status"] == "ready_for_payment"

    signed = await bus.request(AP2_ACP_CHECKOUT, {"session_id": session["id"]}, shop.ctx, protocol=Protocol.AP2)
    async with httpx.AsyncClient(base_url=gateway) as public:
        keys = (await public.get(f"/v1/ap2/{shop.org_id}/jwks.json")).json()
    claims = verify_receipt(signed.checkout_jwt, keys)  # the merchant key's ES256 signature, by kid
    grand_total = next(t["amount"] for t in session["totals"] if t["type"] == "total")
    assert claims["acp_checkout_session_id"] == signed.acp_session_id == session["id"]
    assert claims["total"] == {"amount": grand_total, "currency": "USD"} and signed.amount == grand_total
    assert [(line["item"]["id"], line["quantity"]) for line in claims["line_items"]] == [(ebook, 1)]
    assert all(schemas.errors("types/item.json", line["item"]) == [] for line in claims["line_items"])

    issuer, agent = key("cp-acp"), key("agent-acp")
    await bus.request(AP2_TRUST_ADD, {"issuer": "https://cp.test", "jwks": jwks(issuer)}, shop.ctx)
    purchase = Purchase(signed.merchant_id, signed.checkout_hash, signed.nonce, signed.amount, id=signed.id)

    async def present(chain: str, kind: str = "checkout") -> object:
        return await bus.request(AP2_PRESENT, {"checkout_id": str(signed.id), "mandate": chain, "kind": kind},
                                 shop.ctx, protocol=Protocol.AP2)

    with pytest.raises(MandateRefused) as raised:  # the mandate allows only the atlas
        await present(close_checkout(open_checkout_mandate(issuer, agent, [only(other)]), agent, purchase,
                                     signed.checkout_jwt))
    assert raised.value.details["reason"] == "line_items"
    receipt = await present(close_checkout(open_checkout_mandate(issuer, agent, [only(ebook)]), agent, purchase,
                                           signed.checkout_jwt))
    assert receipt.kind == "checkout" and receipt.receipt["order_id"] == str(signed.id)
    assert schemas.errors(schemas.CHECKOUT_RECEIPT, receipt.receipt) == []

    again = await bus.request(AP2_ACP_CHECKOUT, {"session_id": session["id"]}, shop.ctx, protocol=Protocol.AP2)
    await merchant.update(session["id"], {"line_items": [{"id": ebook}, {"id": ebook}]})  # two now
    stale = Purchase(again.merchant_id, again.checkout_hash, again.nonce, again.amount, id=again.id)
    with pytest.raises(MandateRefused) as raised:
        await bus.request(AP2_PRESENT, {"checkout_id": str(again.id), "kind": "checkout", "mandate": close_checkout(
            open_checkout_mandate(issuer, agent, [only(ebook, 2)]), agent, stale, again.checkout_jwt)},
            shop.ctx, protocol=Protocol.AP2)
    assert raised.value.details["reason"] == "checkout_changed"

    with pytest.raises(CheckoutSessionNotFound):  # another org's session
        await bus.request(AP2_ACP_CHECKOUT, {"session_id": session["id"]}, bob.account.ctx, protocol=Protocol.AP2)
    unready = await merchant.create(create_body(ebook))  # no buyer yet
    assert unready["status"] != "ready_for_payment"
    with pytest.raises(CheckoutNotAllowed):
        await bus.request(AP2_ACP_CHECKOUT, {"session_id": unready["id"]}, shop.ctx, protocol=Protocol.AP2)
