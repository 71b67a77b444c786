"""Delegation hop by hop, and checkout mandates' constraints.

`narrows(parent, child, hop)`: an agent that hands its open mandate on to a sub-agent (an intermediate
KB-SD-JWT hop, `kb+sd-jwt+kb`, carrying a new open mandate bound to the sub-agent's key) may only
narrow it: every constraint of the parent is kept (the same type, within its bounds), pre-set claims
(payee, amount, instrument, ...) are kept unchanged, and the child expires no later. Anything else is a
`MandateRefused` with `reason: widened`, the `hop` (1 = the first delegation after the root) and the
constraint it widened.

`check_checkout(open_mandate, checkout)`: an open checkout mandate's constraints against the
merchant-signed checkout a closed checkout mandate names (`checkout.allowed_merchants`,
`checkout.line_items`, as the official SDK evaluates them: every line item must fit a requirement's
acceptable items, and no requirement takes more than its quantity).
"""

from collections.abc import Callable
from typing import Any

from services.commerce.ap2.constraints import RECURRENCE_SECONDS, refuse

PRESET = ("payee", "payment_amount", "payment_instrument", "pisp", "execution_date")


def _widened(hop: int, constraint: str, message: str) -> Exception:
    return refuse("widened", f"hop {hop} widens its mandate: {message}", hop=hop, constraint=constraint)


def _ids(items: list[dict[str, Any]], key: str = "id") -> set[str]:
    return {str(item.get(key)) for item in items}


def _range(parent: dict[str, Any], child: dict[str, Any]) -> bool:
    return (child["currency"] == parent["currency"] and child["max"] <= parent["max"]
            and child.get("min", 0) >= parent.get("min", 0))


def _budget(parent: dict[str, Any], child: dict[str, Any]) -> bool:
    return child["currency"] == parent["currency"] and child["max"] <= parent["max"]


def _subset(key: str) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    return lambda parent, child: _ids(child["allowed"], key) <= _ids(parent["allowed"], key)


def _recurrence(parent: dict[str, Any], child: dict[str, Any]) -> bool:
    limit, child_limit = parent.get("max_occurrences"), child.get("max_occurrences")
    fewer = limit is None or (child_limit is not None and child_limit <= limit)
    return fewer and RECURRENCE_SECONDS[child["frequency"]] >= RECURRENCE_SECONDS[parent["frequency"]]


def _window(parent: dict[str, Any], child: dict[str, Any]) -> bool:
    later = not parent.get("not_before") or (child.get("not_before") or "") >= parent["not_before"]
    earlier = not parent.get("not_after") or bool(child.get("not_after")) and child["not_after"] <= parent["not_after"]
    return later and earlier


def _same_reference(parent: dict[str, Any], child: dict[str, Any]) -> bool:
    return child["conditional_transaction_id"] == parent["conditional_transaction_id"]


def _line_items(parent: dict[str, Any], child: dict[str, Any]) -> bool:
    allowed = {str(item["id"]) for req in parent["items"] for item in req["acceptable_items"]}
    most = max(req["quantity"] for req in parent["items"])
    return all(_ids(req["acceptable_items"]) <= allowed and req["quantity"] <= most for req in child["items"])


NARROWER: dict[str, Callable[[dict[str, Any], dict[str, Any]], bool]] = {
    "payment.amount_range": _range, "payment.budget": _budget, "payment.allowed_payees": _subset("id"),
    "payment.agent_recurrence": _recurrence, "payment.execution_date": _window,
    "payment.allowed_payment_instruments": _subset("id"), "payment.allowed_pisps": _subset("domain_name"),
    "payment.reference": _same_reference, "checkout.allowed_merchants": _subset("id"),
    "checkout.line_items": _line_items,
}


def narrows(parent: dict[str, Any], child: dict[str, Any], hop: int) -> None:
    """Refuse `child` (the open mandate of delegation hop `hop`) unless it is at most as permissive as `parent`."""
    for name in PRESET:
        if name in parent and child.get(name) != parent[name]:
            raise _widened(hop, name, f"the pre-set {name} changed")
    if parent.get("exp") is not None and (child.get("exp") is None or child["exp"] > parent["exp"]):
        raise _widened(hop, "exp", "it outlives the mandate it comes from")
    for rule in parent["constraints"]:
        kind = rule["type"]
        if not any(other["type"] == kind and NARROWER[kind](rule, other) for other in child["constraints"]):
            raise _widened(hop, kind, f"{kind} is dropped or loosened")


def _line_items_fit(rule: dict[str, Any], items: list[dict[str, Any]]) -> bool:
    """Each unit of each line item assigned to a requirement accepting it, none over its quantity (augmenting paths)."""
    requirements = rule["items"]
    accepts = [_ids(req["acceptable_items"]) for req in requirements]
    units = [str((item.get("item") or item).get("id")) for item in items for _ in range(int(item.get("quantity", 1)))]
    if len(units) > 1000:
        return False
    slots = [(j, k) for j, req in enumerate(requirements) for k in range(req["quantity"])]
    owner: dict[tuple[int, int], int] = {}

    def place(unit: int, seen: set[tuple[int, int]]) -> bool:
        for slot in slots:
            if slot not in seen and units[unit] in accepts[slot[0]]:
                seen.add(slot)
                if slot not in owner or place(owner[slot], seen):
                    owner[slot] = unit
                    return True
        return False

    return all(place(unit, set()) for unit in range(len(units)))


def check_checkout(open_mandate: dict[str, Any], checkout: dict[str, Any]) -> None:
    """Refuse the merchant's checkout (its JWT's claims) if the open checkout mandate does not allow it."""
    merchant = checkout.get("merchant") or {}
    items = checkout.get("line_items") or []
    for rule in open_mandate["constraints"]:
        if rule["type"] == "checkout.allowed_merchants" and str(merchant.get("id")) not in _ids(rule["allowed"]):
            raise refuse("allowed_merchants", "the mandate does not allow this merchant", merchant=merchant.get("id"))
        if rule["type"] == "checkout.line_items" and (not items or not _line_items_fit(rule, items)):
            raise refuse("line_items", "the checkout's items are not the ones the mandate allows")
