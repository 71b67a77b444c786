"""ACP checkout's rules over real HTTP: every status of the 2026-04-17 enum reached, transitions enforced, messages
for problems, declined payments, the edge's refusals (401, API-Version, unknown fields, 404) in ACP's error shape.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from shared.contracts.graph import THING_QUERY
from shared.contracts.tenancy import KEY_CREATE
from tests.acp.conftest import (
    ADDRESS,
    SESSIONS,
    SHIPPING,
    VERSION,
    Merchant,
    acp_headers,
    card,
    create_body,
    eventually,
    total,
    validate,
)
from tests.acp.test_delegate_payment import delegate, delegation
from tests.tenancy.conftest import admin  # noqa: F401 (fixture)

BUYER = {"email": "buyer@example.com"}


def codes(session: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["code"], m.get("param", "")) for m in session["messages"]]


async def pay(merchant: Merchant, session: dict[str, Any], **allowance: Any) -> dict[str, Any]:
    token = await delegate(merchant.caller, delegation(session["id"], **{"max_amount": total(session), **allowance}))
    return {"payment_data": card(token)}


async def test_problems_are_messages_and_decide_the_open_statuses(merchant: Merchant) -> None:
    gone = await merchant.product("Sold out", 500, availability={"status": "out_of_stock"})
    few = await merchant.product("Scarce", 500, availability={"status": "low_stock", "quantity": 1})
    parcel = await merchant.product("Parcel", 500, fulfillment_options=SHIPPING)
    wine = await merchant.product("Wine", 2000, age_restricted=True)
    ebook = await merchant.product("E-book", 300)

    out = await merchant.create(create_body(gone, "not-a-product", few, few, buyer=BUYER))
    assert out["status"] == "not_ready_for_payment"
    assert codes(out) == [("not_found", "$.line_items[1]"), ("out_of_stock", "$.line_items[0]"),
                          ("quantity_exceeded", "$.line_items[2]")] or sorted(codes(out)) == sorted(
        [("out_of_stock", "$.line_items[0]"), ("not_found", "$.line_items[1]"), ("quantity_exceeded", "$.line_items[2]")])

    missing = await merchant.create(create_body(parcel))
    assert missing["status"] == "incomplete"
    assert sorted(codes(missing)) == [("missing", "$.buyer"), ("missing", "$.selected_fulfillment_options")]

    chosen = await merchant.update(missing["id"], {"buyer": BUYER, "selected_fulfillment_options": [
        {"type": "shipping", "option_id": "standard", "item_ids": [parcel]}],
        "fulfillment_details": {"address": {**ADDRESS, "postal_code": "ABC"}}})
    assert chosen["status"] == "not_ready_for_payment"
    assert codes(chosen) == [("invalid", "$.fulfillment_details.address.postal_code")]
    fixed = await merchant.update(missing["id"], {"fulfillment_details": {"address": ADDRESS}})
    assert fixed["status"] == "ready_for_payment" and total(fixed, "fulfillment") == 500

    escalate = await merchant.create(create_body(wine, buyer=BUYER))
    assert escalate["status"] == "requires_escalation" and escalate["continue_url"].startswith("https://")
    assert codes(escalate) == [("age_verification_required", "$.line_items")]

    signin = await merchant.create(create_body(ebook, buyer={**BUYER, "authentication_status": "requires_signin"}))
    assert signin["status"] == "authentication_required"
    assert codes(signin)[0][0] == "requires_sign_in"
    assert (await merchant.update(signin["id"], {"buyer": BUYER}))["status"] == "ready_for_payment"

    euro = await merchant.create(create_body(ebook, currency="eur", buyer=BUYER))
    assert euro["status"] == "not_ready_for_payment" and codes(euro)[0][0] == "unsupported"


async def test_complete_needs_a_ready_session_and_a_good_token(merchant: Merchant) -> None:
    ebook = await merchant.product("E-book", 1500)
    waiting = await merchant.create(create_body(ebook))
    refused = await merchant.send("POST", f"{SESSIONS}/{waiting['id']}/complete",
                                  await pay(merchant, {**waiting, "totals": [{"type": "total", "amount": 1620}]}),
                                  definition="CheckoutSessionCompleteRequest")
    assert refused.status_code == 400 and refused.json()["code"] == "checkout_not_ready"

    session = await merchant.create(create_body(ebook, buyer=BUYER))
    short = await pay(merchant, session, max_amount=total(session) - 1)
    declined = await merchant.complete(session["id"], short)
    assert declined["status"] == "ready_for_payment" and "order" not in declined
    assert codes(declined)[-1] == ("payment_declined", "$.payment_data")
    reused = await merchant.complete(session["id"], short)  # a refused token stays refused
    assert reused["status"] == "ready_for_payment"

    paid = await merchant.complete(session["id"], await pay(merchant, session))
    assert paid["status"] == "completed" and paid["order"]["status"] == "confirmed"


@pytest.mark.parametrize("payment_data, status, order_status", [
    ({"purchase_order_number": "PO-1", "payment_terms": "net_30", "approval_required": True}, "pending_approval",
     "manual_review"),
    ({"purchase_order_number": "PO-2", "payment_terms": "net_30"}, "in_progress", "confirmed"),
])
async def test_a_purchase_order_defers_the_payment(merchant: Merchant, payment_data: dict, status: str,
                                                   order_status: str) -> None:
    ebook = await merchant.product("Licence", 90000, tax_category="exempt")
    session = await merchant.create(create_body(ebook, buyer=BUYER))
    placed = await merchant.complete(session["id"], {"payment_data": payment_data})
    assert placed["status"] == status and placed["order"]["status"] == order_status
    await merchant.update(session["id"], {"buyer": BUYER}, status=405)
    canceled = await merchant.cancel(session["id"], {"intent_trace": {"reason_code": "timing_deferred"}})
    assert canceled["status"] == "canceled" and canceled["order"]["status"] == "canceled"
    ctx = merchant.caller.account.ctx

    async def failed_payment() -> list:
        page = await merchant.bus.request(THING_QUERY, {"type": "payment", "where": [
            {"path": "checkoutSessionId", "value": session["id"]}]}, ctx)
        return [t for t in page.things if t.properties["status"] == "failed"]

    [payment] = await eventually(failed_payment)
    assert payment.properties["protocol"] == "acp" and payment.properties["amountMinor"] == 90000


async def test_final_statuses_refuse_every_change_with_405(merchant: Merchant) -> None:
    ebook = await merchant.product("E-book", 700)
    done = await merchant.create(create_body(ebook, buyer=BUYER))
    await merchant.complete(done["id"], await pay(merchant, done))
    gone = await merchant.create(create_body(ebook, buyer=BUYER))
    assert (await merchant.cancel(gone["id"]))["status"] == "canceled"
    for session_id in (done["id"], gone["id"]):
        for method, path, body in (("POST", "/cancel", {}), ("POST", "", {"buyer": BUYER}),
                                   ("POST", "/complete", {"payment_data": card("vt_nothing")})):
            response = await merchant.send(method, f"{SESSIONS}/{session_id}{path}", body)
            assert response.status_code == 405, response.text
            assert response.json()["code"] == "checkout_not_allowed"
    assert (await merchant.get(done["id"]))["status"] == "completed"


async def test_time_expires_a_session_and_a_claimed_one_is_busy(merchant: Merchant,
                                                                admin: asyncpg.Connection) -> None:  # noqa: F811
    ebook = await merchant.product("E-book", 700)
    old = await merchant.create(create_body(ebook, buyer=BUYER))
    await admin.execute("UPDATE commerce.checkout_sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
                        old["id"])
    assert (await merchant.get(old["id"]))["status"] == "expired"
    await merchant.update(old["id"], {"buyer": BUYER}, status=405)
    await merchant.cancel(old["id"], status=405)

    claimed = await merchant.create(create_body(ebook, buyer=BUYER))
    await admin.execute("UPDATE commerce.checkout_sessions SET status = 'complete_in_progress', updated_at = now() "
                        "WHERE id = $1", claimed["id"])
    assert (await merchant.get(claimed["id"]))["status"] == "complete_in_progress"
    busy = await merchant.send("POST", f"{SESSIONS}/{claimed['id']}/complete", await pay(merchant, claimed))
    assert busy.status_code == 409 and busy.json()["code"] == "checkout_busy"
    await merchant.cancel(claimed["id"], status=409)
    await admin.execute("UPDATE commerce.checkout_sessions SET updated_at = now() - interval '5 minutes' "
                        "WHERE id = $1", claimed["id"])  # the claim's lease ran out: a complete takes it over
    assert (await merchant.complete(claimed["id"], await pay(merchant, claimed)))["status"] == "completed"


async def test_the_edge_refuses_in_acps_error_shape(merchant: Merchant, http: httpx.AsyncClient) -> None:
    ebook = await merchant.product("E-book", 700)
    body = create_body(ebook, buyer=BUYER)

    async def refused(response: httpx.Response, status: int, code: str) -> dict:
        assert response.status_code == status, response.text
        validate("Error", response.json())
        assert response.json()["code"] == code and "Traceback" not in response.text
        return response.json()

    await refused(await http.post(SESSIONS, json=body, headers=acp_headers()), 401, "unauthenticated")
    await refused(await http.post(SESSIONS, json=body, headers={**acp_headers(), "Authorization": "Bearer one_nope"}),
                  401, "unauthenticated")
    await refused(await http.get(f"{SESSIONS}/cs_x", headers={"API-Version": VERSION}), 401, "unauthenticated")
    versionless = await refused(await merchant.send("POST", SESSIONS, body, headers=acp_headers(version=None)), 400,
                                "unsupported_api_version")
    assert versionless["supported_versions"] == [VERSION]
    await refused(await merchant.send("POST", SESSIONS, body, headers=acp_headers(version="2025-09-29")), 400,
                  "unsupported_api_version")
    unknown = await refused(await merchant.send("POST", SESSIONS, {**body, "coupon": "FREE"}), 400, "unknown_field")
    assert unknown["param"] == "$.coupon"
    nested = await refused(await merchant.send("POST", SESSIONS, {**body, "line_items": [{"id": ebook, "quantity": 2}]}),
                           400, "unknown_field")
    assert nested["param"] == "$.line_items[0].quantity"
    missing = await refused(await merchant.send("POST", SESSIONS, {"line_items": [{"id": ebook}], "currency": "usd"}),
                            400, "missing")
    assert missing["param"] == "$.capabilities"
    currency = await refused(await merchant.send("POST", SESSIONS, {**body, "currency": "dollars"}), 400, "invalid")
    assert currency["param"] == "$.currency"
    not_json = await merchant.http.post(SESSIONS, content=b"{nope", headers=acp_headers())
    await refused(not_json, 400, "invalid_json")
    await refused(await merchant.send("GET", f"{SESSIONS}/cs_unknown", headers={"API-Version": VERSION}), 404,
                  "checkout_session_not_found")
    await refused(await merchant.send("POST", f"{SESSIONS}/cs_unknown", {"buyer": BUYER}), 404,
                  "checkout_session_not_found")


async def test_an_agent_platforms_key_scoped_to_checkout_sells_without_reading_the_graph(
        merchant: Merchant, gateway: str) -> None:
    ebook = await merchant.product("E-book", 1200)
    issued = await merchant.bus.request(KEY_CREATE, {"name": "agent platform",
                                                     "scopes": ["acp:*"]},
                                        merchant.caller.account.ctx)
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {issued.key}"},
                                 timeout=10) as platform_http:
        platform = Merchant(type(merchant.caller)(merchant.caller.account, platform_http), merchant.bus)
        session = await platform.create(create_body(ebook, buyer=BUYER))
        assert session["status"] == "ready_for_payment" and session["line_items"][0]["unit_amount"] == 1200
        done = await platform.complete(session["id"], await pay(platform, session))
        assert done["status"] == "completed"
        things = await platform_http.get("/v1/things")
        assert things.status_code == 403  # the key sells; it reads nothing else


async def test_sessions_expire_after_their_ttl(merchant: Merchant) -> None:
    ebook = await merchant.product("E-book", 100)
    session = await merchant.create(create_body(ebook, buyer=BUYER))
    expires = datetime.fromisoformat(session["expires_at"])
    created = datetime.fromisoformat(session["created_at"])
    assert expires - created == timedelta(hours=6) and expires > datetime.now(UTC)


async def test_a_sale_takes_the_stock_it_sold(merchant: Merchant) -> None:
    lamp = await merchant.product("Lamp", 3000, availability={"status": "in_stock", "quantity": 3})
    first = await merchant.create(create_body(lamp, lamp, buyer=BUYER))
    await merchant.complete(first["id"], await pay(merchant, first))
    second = await merchant.create(create_body(lamp, lamp, buyer=BUYER))
    assert second["status"] == "not_ready_for_payment" and codes(second) == [("quantity_exceeded", "$.line_items[0]")]
    assert second["line_items"][0]["available_quantity"] == 1
    last = await merchant.update(second["id"], {"line_items": [{"id": lamp}]})
    await merchant.complete(last["id"], await pay(merchant, last))
    gone = await merchant.create(create_body(lamp, buyer=BUYER))
    assert codes(gone) == [("out_of_stock", "$.line_items[0]")]
    assert gone["line_items"][0]["availability_status"] == "out_of_stock"
