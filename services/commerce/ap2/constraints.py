"""The open payment mandate's constraints, checked against the closed mandate a purchase presents.

Each constraint type of open_payment_mandate.json is checked here, as the schema names it; a violation
is a `MandateRefused` whose `details.reason` is the constraint's name without its `payment.` prefix
(`amount_range`, `allowed_payees`, `budget`, `recurrence`, ...). Uses of the mandate (`Usage`) are
counted by the merchant that verifies (commerce, atomically in Postgres): without a
`payment.agent_recurrence` constraint an open payment mandate pays once. `payment.reference` (the digest
of the open checkout mandate the payment belongs to) needs to know which open checkout mandate checked
the checkout out: the merchant checks it with `check_reference` (refused as `reference`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from shared.contracts.commerce.ap2 import MandateRefused

DAY = 86400
RECURRENCE_SECONDS = {"ON_DEMAND": 0, "DAILY": DAY, "WEEKLY": 7 * DAY, "BIWEEKLY": 14 * DAY, "MONTHLY": 28 * DAY,
                      "QUARTERLY": 90 * DAY, "ANNUALLY": 365 * DAY}
"""The least time between two uses a recurrence frequency allows (a month is taken as 28 days, the shortest)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What this open mandate has paid so far at this merchant."""

    uses: int = 0
    spent: dict[str, int] = field(default_factory=dict)  # minor units by currency
    last_used_at: float | None = None


def refuse(reason: str, message: str, **details: Any) -> MandateRefused:
    return MandateRefused(message, {"reason": reason, **details})


def _amount_range(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    amount = closed["payment_amount"]
    if amount["currency"] != rule["currency"]:
        raise refuse("amount_range", f"the mandate allows only {rule['currency']}", currency=amount["currency"])
    if amount["amount"] > rule["max"] or amount["amount"] < rule.get("min", 0):
        raise refuse("amount_range", f"{amount['amount']} is outside the allowed range", amount=amount["amount"],
                     min=rule.get("min"), max=rule["max"])


def _allowed_payees(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    if closed["payee"]["id"] not in {payee["id"] for payee in rule["allowed"]}:
        raise refuse("allowed_payees", "the mandate does not allow paying this payee", payee=closed["payee"]["id"])


def _budget(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    amount = closed["payment_amount"]
    if amount["currency"] != rule["currency"]:
        raise refuse("budget", f"the budget is in {rule['currency']}", currency=amount["currency"])
    spent = usage.spent.get(rule["currency"], 0)
    if spent + amount["amount"] > rule["max"]:
        raise refuse("budget", f"paying {amount['amount']} would exceed the budget of {rule['max']} "
                     f"({spent} spent)", amount=amount["amount"], spent=spent, max=rule["max"])


def _recurrence(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    limit = rule.get("max_occurrences")
    if limit is not None and usage.uses >= limit:
        raise refuse("recurrence", f"the mandate may be used {limit} times", uses=usage.uses, max_occurrences=limit)
    gap = RECURRENCE_SECONDS[rule["frequency"]]
    if gap and usage.last_used_at is not None and now - usage.last_used_at < gap:
        raise refuse("recurrence", f"the mandate may be used {rule['frequency']} only", frequency=rule["frequency"])


def _day(value: str) -> date:
    return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)


def _execution_date(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    when = _day(closed["execution_date"]) if closed.get("execution_date") else \
        datetime.fromtimestamp(now, timezone.utc).date()
    try:
        too_early = bool(rule.get("not_before")) and when < _day(rule["not_before"])
        too_late = bool(rule.get("not_after")) and when > _day(rule["not_after"])
    except ValueError:
        raise refuse("invalid_mandate", "the execution_date constraint's dates are not ISO 8601") from None
    if too_early or too_late:
        raise refuse("execution_date", "the payment's date is outside the allowed window", date=when.isoformat())


def _allowed_instruments(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    if closed["payment_instrument"]["id"] not in {item["id"] for item in rule["allowed"]}:
        raise refuse("allowed_payment_instruments", "the mandate does not allow this payment instrument")


def _allowed_pisps(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    pisp = closed.get("pisp")
    if pisp is None or pisp["domain_name"] not in {item["domain_name"] for item in rule["allowed"]}:
        raise refuse("allowed_pisps", "the mandate does not allow this payment initiation service provider")


def _reference(rule: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    """Binds the payment to an open checkout mandate: `check_reference`, with what the merchant knows of it."""


def reference(open_mandate: dict[str, Any]) -> str | None:
    """The open checkout mandate's digest the open payment mandate names (`payment.reference`), if any."""
    return next((rule["conditional_transaction_id"] for rule in open_mandate["constraints"]
                 if rule["type"] == "payment.reference"), None)


def check_reference(open_mandate: dict[str, Any], checked_out_by: str | None, names_a_checkout_mandate: bool) -> None:
    """Refuse a payment whose `payment.reference` does not name the open checkout mandate that checked this
    checkout out (`checked_out_by`, its digest), or — the checkout checked out by none — names an open checkout
    mandate the merchant accepted for another checkout (`names_a_checkout_mandate`). A reference naming no
    checkout mandate the merchant knows pays a plain checkout (a payment mandate granted on its own)."""
    named = reference(open_mandate)
    if checked_out_by is not None and named != checked_out_by:
        raise refuse("reference", "the payment mandate's reference does not name the checkout mandate that "
                     "authorized this checkout", constraint="payment.reference", reference=named,
                     expected=checked_out_by)
    if checked_out_by is None and names_a_checkout_mandate:
        raise refuse("reference", "the payment mandate belongs to a checkout mandate that did not authorize this "
                     "checkout", constraint="payment.reference", reference=named)


CHECKS: dict[str, Callable[[dict[str, Any], dict[str, Any], Usage, float], None]] = {
    "payment.amount_range": _amount_range, "payment.allowed_payees": _allowed_payees, "payment.budget": _budget,
    "payment.agent_recurrence": _recurrence, "payment.execution_date": _execution_date,
    "payment.allowed_payment_instruments": _allowed_instruments, "payment.allowed_pisps": _allowed_pisps,
    "payment.reference": _reference,
}


def check(open_mandate: dict[str, Any], closed: dict[str, Any], usage: Usage, now: float) -> None:
    """Refuse the closed mandate if it breaks any constraint of the open one (both already schema-valid)."""
    if open_mandate.get("payee") and open_mandate["payee"]["id"] != closed["payee"]["id"]:
        raise refuse("payee", "the mandate names another payee", payee=closed["payee"]["id"])
    fixed = open_mandate.get("payment_amount")
    if fixed and fixed != closed["payment_amount"]:
        raise refuse("payment_amount", "the mandate fixes another amount")
    rules = open_mandate["constraints"]
    if usage.uses and not any(rule["type"] == "payment.agent_recurrence" for rule in rules):
        raise refuse("recurrence", "the mandate has no recurrence: it pays once", uses=usage.uses)
    for rule in rules:
        CHECKS[rule["type"]](rule, closed, usage, now)
