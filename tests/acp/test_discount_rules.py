"""The pure rules of discount codes (services/commerce/checkout_discounts.py): amounts, allocation, rejections."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.commerce.checkout_discounts import Priced, apply_codes, submitted_codes

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def row(code: str, **fields: object) -> dict[str, object]:
    return {"id": uuid4(), "code": code, "name": code, "kind": "percentage", "percent_off": 10, "amount_off": None,
            "currency": None, "starts_at": None, "ends_at": None, "max_redemptions": None, "times_redeemed": 0,
            "min_subtotal": 0, "product_ids": [], "active": True, **fields}


def test_the_amount_is_split_in_proportion_and_adds_up_exactly() -> None:
    lines = [Priced(uuid4(), 333), Priced(uuid4(), 333), Priced(uuid4(), 334)]
    fixed = row("TEN", kind="fixed", percent_off=None, amount_off=100, currency="usd")
    done = apply_codes(["ten"], {"ten": fixed}, lines, "usd", NOW)
    assert sum(done.per_line) == 100 and sorted(done.per_line) == [33, 33, 34]
    assert done.discount_id == fixed["id"]
    half_up = apply_codes(["P"], {"p": row("P", percent_off=15)}, [Priced(uuid4(), 1010)], "usd", NOW)
    assert half_up.per_line == [152]  # 151.5 rounds up
    capped = apply_codes(["BIG"], {"big": row("BIG", kind="fixed", percent_off=None, amount_off=5000,
                                                 currency="usd")}, [Priced(uuid4(), 700)], "usd", NOW)
    assert capped.per_line == [700] and capped.response["applied"][0]["amount"] == 700


def test_codes_that_cannot_apply_are_rejected_in_order_and_none_means_not_sent() -> None:
    line = Priced(uuid4(), 1000)
    found = {"gone": row("GONE", ends_at=NOW - timedelta(days=1)), "used": row("USED", max_redemptions=2,
                                                                               times_redeemed=2),
             "off": row("OFF", active=False)}
    done = apply_codes(["GONE", "USED", "OFF", "X"], found, [line], "usd", NOW)
    assert [r["reason"] for r in done.response["rejected"]] == [
        "discount_code_expired", "discount_code_usage_limit_reached", "discount_code_invalid", "discount_code_invalid"]
    assert done.per_line == [0] and done.discount_id is None
    assert submitted_codes({}) is None and submitted_codes({"discounts": {"codes": []}}) == []
    assert submitted_codes({"coupons": ["A"]}) == ["A"]
    assert apply_codes(None, {}, [line], "usd", NOW).response is None
