"""What remains of an open mandate granted to an agent: its budget left, its uses left, when it may be used next.

A shopping agent's model chooses a mandate before buying (the `ap2_mandates` tool); this says, from the open
mandate's constraints and its uses so far (the closed mandates signed under it and not released), what a next
purchase may spend and whether the mandate can pay at all now — the same rules `constraints.check` enforces
when the agent closes it, so what the model is told is what it will be allowed.
"""

from datetime import UTC, datetime
from typing import Any

from services.commerce.ap2.constraints import RECURRENCE_SECONDS, Usage
from services.commerce.ap2.verify import OPEN_PAYMENT_VCT


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def remaining(open_mandate: dict[str, Any], usage: Usage, now: float) -> dict[str, Any]:
    """`uses_left` (None: unlimited), `budget` (max, spent, left), `per_purchase` (the amount range),
    `max_amount_now` (the most one purchase may spend now, per currency), `next_use_at`, and `usable` with
    `why_not` (the constraint that forbids any purchase now)."""
    rules = {rule["type"]: rule for rule in open_mandate["constraints"]}
    left: dict[str, Any] = {"uses": usage.uses, "spent": dict(usage.spent), "uses_left": None, "usable": True,
                            "why_not": None}
    ceilings: dict[str, int] = {}
    recurrence = rules.get("payment.agent_recurrence")
    if open_mandate.get("vct") == OPEN_PAYMENT_VCT and recurrence is None:
        left["uses_left"] = max(0, 1 - usage.uses)  # no recurrence: it pays once
    if recurrence is not None:
        limit = recurrence.get("max_occurrences")
        left["uses_left"] = None if limit is None else max(0, limit - usage.uses)
        gap = RECURRENCE_SECONDS[recurrence["frequency"]]
        if gap and usage.last_used_at is not None and usage.last_used_at + gap > now:
            left["next_use_at"] = _at(usage.last_used_at + gap)
            left["usable"], left["why_not"] = False, "recurrence"
    if left["uses_left"] == 0:
        left["usable"], left["why_not"] = False, "recurrence"
    if (budget := rules.get("payment.budget")) is not None:
        spent = usage.spent.get(budget["currency"], 0)
        left["budget"] = {"currency": budget["currency"], "max": budget["max"], "spent": spent,
                          "left": max(0, budget["max"] - spent)}
        ceilings[budget["currency"]] = left["budget"]["left"]
    if (span := rules.get("payment.amount_range")) is not None:
        left["per_purchase"] = {"currency": span["currency"], "min": span.get("min", 0), "max": span["max"]}
        ceilings[span["currency"]] = min(ceilings.get(span["currency"], span["max"]), span["max"])
    if (fixed := open_mandate.get("payment_amount")) is not None:
        ceilings[fixed["currency"]] = min(ceilings.get(fixed["currency"], fixed["amount"]), fixed["amount"])
    if ceilings:
        left["max_amount_now"] = ceilings
        if left["usable"] and all(amount <= 0 for amount in ceilings.values()):
            left["usable"], left["why_not"] = False, "budget"
    return left
