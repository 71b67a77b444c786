"""ACP checkout's cross-tenant attacks: with org A's key, org B's sessions and products get nothing through.

These routes answer in ACP's error shape and need ACP's headers, so their rows live here rather than in
tests/gateway/test_cross_tenant.py's problem+json table (their routes are not the platform's OpenAPI routes).
Each attack is refused (404 for B's session, a `not_found` message for B's product) and B's session is
unchanged afterwards.
"""

from typing import Any

from tests.acp.conftest import SESSIONS, Merchant, card, create_body, total
from tests.acp.test_delegate_payment import delegate, delegation

BUYER = {"email": "buyer@example.com"}


async def test_org_a_cannot_read_change_complete_or_cancel_org_bs_sessions(merchant: Merchant,
                                                                            rival: Merchant) -> None:
    victim_product = await rival.product("Victim's secret product", 4200)
    victim = await rival.create(create_body(victim_product, buyer=BUYER))
    before = await rival.get(victim["id"])
    token = await delegate(merchant.caller, delegation(victim["id"], max_amount=total(victim)))
    attacks: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("POST", "", {"buyer": {"email": "attacker@example.com"}}),
        ("POST", "", {"line_items": [{"id": victim_product}]}),
        ("POST", "/complete", {"payment_data": card(token)}),
        ("POST", "/cancel", {}),
        ("POST", "/cancel", {"intent_trace": {"reason_code": "other"}}),
    ]
    for method, path, body in attacks:
        headers = {"API-Version": "2026-04-17"} if method == "GET" else None
        response = await merchant.send(method, f"{SESSIONS}/{victim['id']}{path}", body, headers=headers)
        assert response.status_code == 404, f"{method} {path}: {response.text}"
        assert response.json()["code"] == "checkout_session_not_found"
        assert victim_product not in response.text and "Victim" not in response.text
    after = await rival.get(victim["id"])
    assert {k: after[k] for k in ("status", "line_items", "buyer", "totals", "updated_at")} == {
        k: before[k] for k in ("status", "line_items", "buyer", "totals", "updated_at")}


async def test_org_a_cannot_buy_org_bs_products(merchant: Merchant, rival: Merchant) -> None:
    victim_product = await rival.product("Victim's product", 4200)
    session = await merchant.create(create_body(victim_product, buyer=BUYER))
    assert session["status"] == "not_ready_for_payment" and session["line_items"] == []
    assert [(m["code"], m["param"]) for m in session["messages"]] == [("not_found", "$.line_items[0]")]
    assert "Victim" not in str(session) and total(session) == 0
    refused = await merchant.send("POST", f"{SESSIONS}/{session['id']}/complete",
                                  {"payment_data": {"purchase_order_number": "PO-steal"}})
    assert refused.status_code == 400 and refused.json()["code"] == "checkout_not_ready"


async def test_org_ids_cannot_be_forged_in_a_body(merchant: Merchant, rival: Merchant) -> None:
    product = await merchant.product("Own", 100)
    forged = create_body(product, buyer=BUYER, org_id=str(rival.caller.account.org_id))
    response = await merchant.send("POST", SESSIONS, forged)
    assert response.status_code == 400 and response.json()["param"] == "$.org_id"
    metadata = create_body(product, buyer=BUYER, metadata={"org_id": str(rival.caller.account.org_id)})
    created = await merchant.create(metadata)  # free-form metadata is the merchant's own, echoed, never an org
    assert (await merchant.get(created["id"]))["id"] == created["id"]
    assert (await rival.send("GET", f"{SESSIONS}/{created['id']}", headers={"API-Version": "2026-04-17"})
            ).status_code == 404
