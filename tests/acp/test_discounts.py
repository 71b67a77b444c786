"""Discount codes: the org's data (`/v1/discounts`, `discounts:*`), applied by ACP checkout over real HTTP.

Every checkout request and answer is checked against the official 2026-04-17 JSON Schema (conftest.Merchant):
a code lands in `discounts.applied` (allocated to the line items it covers, so the totals stay consistent)
or in `discounts.rejected` with ACP's reason; a redemption is counted once, at complete, also when two
completes race for a code's last redemption.
"""

import asyncio
from typing import Any

import httpx

from shared.contracts.eventlog import QUERY
from shared.contracts.tenancy import KEY_CREATE
from tests.acp.conftest import Merchant, create_body, eventually, total
from tests.acp.test_checkout_flow import assert_consistent
from tests.acp.test_checkout_rules import BUYER, pay
from tests.gateway.conftest import assert_problem

PAST = {"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2021-01-01T00:00:00Z"}


async def discount(merchant: Merchant, code: str, **fields: Any) -> dict[str, Any]:
    body = {"code": code, "name": f"{code} promotion", "kind": "percentage", "percent_off": 10, **fields}
    made = await merchant.caller.call("POST", "/v1/discounts", body)
    assert made.status_code == 201, made.text
    return made.json()


def reasons(session: dict[str, Any]) -> dict[str, str]:
    return {r["code"]: r["reason"] for r in session["discounts"]["rejected"]}


async def test_a_code_is_applied_across_its_lines_and_redeemed_once_at_complete(merchant: Merchant) -> None:
    book, pen = await merchant.product("Book", 2000, tax_category="digital"), await merchant.product("Pen", 1000)
    made = await discount(merchant, "SAVE10")
    assert (made["code"], made["percent_off"], made["times_redeemed"], made["active"]) == ("SAVE10", 10, 0, True)
    session = await merchant.create(create_body(book, pen, buyer=BUYER, discounts={"codes": ["save10"]}))
    assert session["status"] == "ready_for_payment"
    [applied] = session["discounts"]["applied"]
    assert (applied["code"], applied["amount"], applied["coupon"]["percent_off"]) == ("save10", 300, 10)
    assert applied["allocations"] == [{"path": "$.line_items[0]", "amount": 200},
                                      {"path": "$.line_items[1]", "amount": 100}]
    assert session["discounts"]["codes"] == ["save10"] and session["discounts"]["rejected"] == []
    assert [next(t["amount"] for t in line["totals"] if t["type"] == "items_discount")
            for line in session["line_items"]] == [200, 100]
    assert_consistent(session)
    assert total(session, "items_discount") == 300 and total(session, "subtotal") == 2700

    cleared = await merchant.update(session["id"], {"discounts": {"codes": []}})
    assert total(cleared, "items_discount") == 0 and cleared["discounts"]["applied"] == []
    again = await merchant.update(session["id"], {"discounts": {"codes": ["SAVE10"]}})
    assert total(again, "items_discount") == 300
    assert (await merchant.caller.call("GET", "/v1/discounts/save10")).json()["times_redeemed"] == 0

    done = await merchant.complete(session["id"], await pay(merchant, again))
    assert done["status"] == "completed" and total(done["order"]) == total(again)
    assert (await merchant.caller.call("GET", "/v1/discounts/SAVE10")).json()["times_redeemed"] == 1
    listed = (await merchant.caller.call("GET", "/v1/discounts")).json()["discounts"]
    assert [d["code"] for d in listed] == ["SAVE10"]

    async def discount_events() -> list:
        page = await merchant.bus.request(QUERY, {"types": ["commerce_event"]}, merchant.caller.account.ctx)
        return [e for e in page.events if e.metadata.get("eventType") == "discount_created"]

    [event] = await eventually(discount_events)
    assert event.metadata["code"] == "SAVE10" and str(event.target_id) == made["id"]


async def test_each_code_that_cannot_apply_is_rejected_with_acps_reason(merchant: Merchant) -> None:
    book, pen = await merchant.product("Book", 2000), await merchant.product("Pen", 1000)
    await discount(merchant, "OLD", **PAST)
    await discount(merchant, "LATER", starts_at="2099-01-01T00:00:00Z")
    await discount(merchant, "BIG", min_subtotal=5000)
    await discount(merchant, "PENONLY", product_ids=[pen])
    await discount(merchant, "EUROS", kind="fixed", percent_off=None, amount_off=500, currency="eur")
    await discount(merchant, "FIVE", kind="fixed", percent_off=None, amount_off=500, currency="usd")
    await discount(merchant, "OFF")
    assert (await merchant.caller.call("PATCH", "/v1/discounts/OFF", {"active": False})).json()["active"] is False
    codes = ["OLD", "LATER", "BIG", "NOPE", "EUROS", "OFF", "FIVE", "five", "PENONLY"]
    session = await merchant.create(create_body(book, buyer=BUYER, discounts={"codes": codes}))
    assert reasons(session) == {
        "OLD": "discount_code_expired", "LATER": "discount_code_invalid", "BIG": "discount_code_minimum_not_met",
        "NOPE": "discount_code_invalid", "EUROS": "discount_code_invalid", "OFF": "discount_code_invalid",
        "five": "discount_code_already_applied", "PENONLY": "discount_code_user_ineligible"}
    [applied] = session["discounts"]["applied"]
    assert (applied["code"], applied["amount"]) == ("FIVE", 500) and total(session, "items_discount") == 500

    both = await merchant.update(session["id"], {"line_items": [{"id": book}, {"id": pen}],
                                                 "discounts": {"codes": ["PENONLY", "FIVE"]}})
    assert [a["code"] for a in both["discounts"]["applied"]] == ["PENONLY"]  # 10% of the pen only
    assert both["discounts"]["applied"][0]["allocations"] == [{"path": "$.line_items[1]", "amount": 100}]
    assert reasons(both) == {"FIVE": "discount_code_combination_disallowed"}
    assert_consistent(both)


async def test_two_completes_racing_for_the_last_redemption_redeem_it_once(merchant: Merchant) -> None:
    ebook = await merchant.product("E-book", 1000)
    await discount(merchant, "ONCE", max_redemptions=1)
    sessions = [await merchant.create(create_body(ebook, buyer=BUYER, discounts={"codes": ["ONCE"]}))
                for _ in range(2)]
    payments = [await pay(merchant, s) for s in sessions]
    answers = await asyncio.gather(*(merchant.send("POST", f"/acp/checkout_sessions/{s['id']}/complete", p,
                                                   definition="CheckoutSessionCompleteRequest")
                                     for s, p in zip(sessions, payments, strict=True)))
    assert sorted(a.status_code for a in answers) == [200, 400], [a.text for a in answers]
    loser = next(s for s, a in zip(sessions, answers, strict=True) if a.status_code == 400)
    assert (await merchant.caller.call("GET", "/v1/discounts/ONCE")).json()["times_redeemed"] == 1
    retry = await merchant.update(loser["id"], {"buyer": BUYER})
    assert reasons(retry) == {"ONCE": "discount_code_usage_limit_reached"} and retry["status"] == "ready_for_payment"
    assert total(retry) == 1000 + round(1000 * 0.08)  # full price again (8% standard tax)


async def test_discounts_are_managed_by_their_owner_only(merchant: Merchant, gateway: str) -> None:
    await discount(merchant, "MINE")
    taken = await merchant.caller.call("POST", "/v1/discounts", {"code": "mine", "name": "x", "kind": "percentage",
                                                                 "percent_off": 5})
    assert_problem(taken, 409)
    invalid = await merchant.caller.call("POST", "/v1/discounts", {"code": "BAD", "name": "x", "kind": "fixed",
                                                                   "percent_off": 5})
    assert invalid.status_code == 422
    assert_problem(await merchant.caller.call("GET", "/v1/discounts/NONE"), 404)
    issued = await merchant.bus.request(KEY_CREATE, {"name": "agent platform", "scopes": ["acp:*"]},
                                        merchant.caller.account.ctx)
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {issued.key}"},
                                 timeout=10) as platform:
        refused = await platform.post("/v1/discounts", json={"code": "FREE", "name": "x", "kind": "percentage",
                                                             "percent_off": 100})
        assert_problem(refused, 403)
        assert_problem(await platform.patch("/v1/discounts/MINE", json={"active": False}), 403)
    assert (await merchant.caller.call("GET", "/v1/discounts/MINE")).json()["active"] is True
