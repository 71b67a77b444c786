"""How discount codes price a checkout session (pure: the session's lines, the org's discounts, the time).

Each submitted code (case-insensitive; ACP `discounts.codes`, or the deprecated `coupons`) is either applied or
rejected with ACP's `DiscountErrorCode`, checked in this order: a repeat of an earlier code
(`discount_code_already_applied`), unknown or switched off (`_invalid`), not started yet (`_invalid`), ended
(`_expired`), redeemed `max_redemptions` times (`_usage_limit_reached`), a fixed amount in another currency
(`_invalid`), none of the session's products covered (`_user_ineligible`), the covered items' subtotal under
`min_subtotal` (`_minimum_not_met`), a second applicable code (`_combination_disallowed`: one code per session).

The applied code's amount (a percentage of the covered items' base amount, rounded half up, or the fixed
amount, never more than that base) is split across the covered lines in proportion to their base amounts
(largest remainders get the odd units), so it lands in each line's `items_discount` and the session's totals
stay consistent (totals.py); its `allocations` say where it went.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Priced:
    """A priced line, as discounts see it: its product and base amount (unit price x quantity)."""

    product_id: UUID
    base: int


@dataclass(frozen=True, slots=True)
class Discounting:
    """What the codes did: per line discount (by position), the discount to redeem at complete, ACP's response."""

    per_line: list[int]
    discount_id: UUID | None
    response: dict[str, Any] | None


def submitted_codes(extras: Mapping[str, Any]) -> list[str] | None:
    """The codes the agent submitted (None: it never sent `discounts` or `coupons`; [] when it cleared them)."""
    if "discounts" not in extras and "coupons" not in extras:
        return None
    return list((extras.get("discounts") or {}).get("codes") or extras.get("coupons") or [])


def _reject(code: str, reason: str, message: str) -> dict[str, Any]:
    return {"code": code, "reason": f"discount_code_{reason}", "message": message}


def _split(amount: int, bases: list[int]) -> list[int]:
    """`amount` over `bases` in proportion (largest remainder), summing exactly to `amount`."""
    total = sum(bases)
    if total == 0:
        return [0] * len(bases)
    shares = [amount * base // total for base in bases]
    order = sorted(range(len(bases)), key=lambda i: (-(amount * bases[i] % total), i))
    for i in order[:amount - sum(shares)]:
        shares[i] += 1
    return shares


def _coupon(row: Mapping[str, Any]) -> dict[str, Any]:
    coupon: dict[str, Any] = {"id": str(row["id"]), "name": row["name"], "duration": "once"}
    if row["kind"] == "percentage":
        coupon["percent_off"] = row["percent_off"]
    else:
        coupon.update(amount_off=row["amount_off"], currency=row["currency"])
    if row["max_redemptions"] is not None:
        coupon.update(max_redemptions=row["max_redemptions"], times_redeemed=row["times_redeemed"])
    return coupon


def _problem(row: Mapping[str, Any] | None, currency: str, now: datetime) -> tuple[str, str] | None:
    if row is None or not row["active"]:
        return "invalid", "this merchant has no such discount code"
    if row["starts_at"] is not None and row["starts_at"] > now:
        return "invalid", "this discount code is not valid yet"
    if row["ends_at"] is not None and row["ends_at"] <= now:
        return "expired", "this discount code has expired"
    if row["max_redemptions"] is not None and row["times_redeemed"] >= row["max_redemptions"]:
        return "usage_limit_reached", "this discount code has been used up"
    if row["kind"] == "fixed" and row["currency"] != currency:
        return "invalid", f"this discount code is in {row['currency']}, not {currency}"
    return None


def apply_codes(codes: list[str] | None, found: Mapping[str, Mapping[str, Any]], lines: list[Priced], currency: str,
                now: datetime) -> Discounting:
    """The session's discount (see the module's docstring); `found`: the org's discounts by lower-case code."""
    per_line = [0] * len(lines)
    if codes is None:
        return Discounting(per_line, None, None)
    applied: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    seen: set[str] = set()
    chosen: UUID | None = None
    for code in codes:
        if code.lower() in seen:
            rejected.append(_reject(code, "already_applied", "this discount code was submitted already"))
            continue
        seen.add(code.lower())
        row = found.get(code.lower())
        if problem := _problem(row, currency, now):
            rejected.append(_reject(code, *problem))
            continue
        assert row is not None
        restricted = {str(p) for p in row["product_ids"]}
        covered = [i for i, line in enumerate(lines) if not restricted or str(line.product_id) in restricted]
        if not covered:
            rejected.append(_reject(code, "user_ineligible", "this discount code applies to none of these items"))
            continue
        base = sum(lines[i].base for i in covered)
        if base < row["min_subtotal"]:
            rejected.append(_reject(code, "minimum_not_met", f"this discount code needs items worth at least "
                                    f"{row['min_subtotal']} ({currency} minor units)"))
            continue
        if chosen is not None:
            rejected.append(_reject(code, "combination_disallowed", "only one discount code applies per checkout"))
            continue
        amount = (base * row["percent_off"] + 50) // 100 if row["kind"] == "percentage" else min(row["amount_off"],
                                                                                                  base)
        shares = _split(amount, [lines[i].base for i in covered])
        for i, share in zip(covered, shares, strict=True):
            per_line[i] = share
        chosen = row["id"]
        entry: dict[str, Any] = {
            "id": f"disc_{UUID(str(row['id'])).hex}", "code": code, "coupon": _coupon(row), "amount": amount,
            "automatic": False, "method": "across", "priority": 1,
            "allocations": [{"path": f"$.line_items[{i}]", "amount": s} for i, s in zip(covered, shares, strict=True)]}
        if row["starts_at"] is not None:
            entry["start"] = row["starts_at"].isoformat()
        if row["ends_at"] is not None:
            entry["end"] = row["ends_at"].isoformat()
        applied.append(entry)
    return Discounting(per_line, chosen, {"codes": codes, "applied": applied, "rejected": rejected})
