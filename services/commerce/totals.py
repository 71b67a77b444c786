"""A checkout's money, in integer minor units: line amounts, session totals, and ACP's `Total` entries.

Every amount is an integer of the session's currency's minor unit (cents for usd, yen for jpy), as ACP
writes them; nothing here uses floats. The rules, which always hold and the tests check:

    line:     subtotal = base - discount;  total = subtotal + tax;  base = unit price x quantity
    session:  items_base_amount = sum(line base)      items_discount = sum(line discount)
              subtotal = items_base_amount - items_discount
              total = subtotal - discount + fulfillment + tax      (tax = sum(line tax))

Tax is charged per line on its subtotal at the rate of the product's tax category (basis points,
rounded half up per line); fulfillment is not taxed. A discount code's amount is allocated to the lines it
covers (checkout_discounts.py), so it is each line's `discount` (the session's `items_discount`), taxed
after; the session-level `discount` stays zero.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.contracts.commerce.products import exponent


def to_major(amount: int, currency: str) -> Decimal:
    """Minor units as money: 1999 usd -> 19.99 (what payment events carry, so revenue sums across protocols)."""
    return Decimal(amount).scaleb(-exponent(currency))


def tax_of(amount: int, rate_bps: int) -> int:
    """Tax on `amount` at `rate_bps` basis points, rounded half up."""
    return (amount * rate_bps + 5_000) // 10_000


@dataclass(frozen=True, slots=True)
class LineAmounts:
    base: int
    discount: int
    subtotal: int
    tax: int
    total: int


def line_amounts(unit_amount: int, quantity: int, rate_bps: int, discount: int = 0) -> LineAmounts:
    base = unit_amount * quantity
    subtotal = base - discount
    tax = tax_of(subtotal, rate_bps)
    return LineAmounts(base=base, discount=discount, subtotal=subtotal, tax=tax, total=subtotal + tax)


@dataclass(frozen=True, slots=True)
class SessionAmounts:
    items_base_amount: int
    items_discount: int
    subtotal: int
    discount: int
    fulfillment: int
    tax: int
    total: int


def session_amounts(lines: list[LineAmounts], fulfillment: int, discount: int = 0) -> SessionAmounts:
    base = sum(line.base for line in lines)
    items_discount = sum(line.discount for line in lines)
    subtotal = base - items_discount
    tax = sum(line.tax for line in lines)
    return SessionAmounts(items_base_amount=base, items_discount=items_discount, subtotal=subtotal, discount=discount,
                          fulfillment=fulfillment, tax=tax, total=subtotal - discount + fulfillment + tax)


def _entry(kind: str, text: str, amount: int) -> dict[str, Any]:
    return {"type": kind, "display_text": text, "amount": amount}


def line_totals(amounts: LineAmounts) -> list[dict[str, Any]]:
    """A line item's ACP `Total`s."""
    return [_entry("items_base_amount", "Base amount", amounts.base),
            _entry("items_discount", "Discount", amounts.discount),
            _entry("subtotal", "Subtotal", amounts.subtotal),
            _entry("tax", "Tax", amounts.tax),
            _entry("total", "Total", amounts.total)]


def session_totals(amounts: SessionAmounts, fulfillment_title: str | None) -> list[dict[str, Any]]:
    """The session's ACP `Total`s, in the order a receipt reads."""
    return [_entry("items_base_amount", "Items", amounts.items_base_amount),
            _entry("items_discount", "Item discounts", amounts.items_discount),
            _entry("subtotal", "Subtotal", amounts.subtotal),
            _entry("discount", "Discount", amounts.discount),
            _entry("fulfillment", fulfillment_title or "Fulfillment", amounts.fulfillment),
            _entry("tax", "Tax", amounts.tax),
            _entry("total", "Total", amounts.total)]


def option_totals(amount: int, title: str) -> list[dict[str, Any]]:
    """A fulfillment option's ACP `Total`s: its price."""
    return [_entry("fulfillment", title, amount), _entry("total", "Total", amount)]


def total_of(totals: list[dict[str, Any]]) -> int:
    """The `total` entry of a list of ACP `Total`s."""
    return next(entry["amount"] for entry in totals if entry["type"] == "total")
