"""A `complete`'s charge and its order, in one transaction (`pay`): what service_checkout.py runs once the session
is claimed (`complete_in_progress`).

The charge runs through the configured PSP (`psp.provider`) in the transaction that writes the order, so an
order exists exactly when the provider charged (a token spent in a rolled-back transaction is not spent). A
decline puts the session back to `ready_for_payment` with a `payment_declined` message. A sale's stock
reservations are sold and its graph side queued (checkout_settlement.py) in the same transaction.

`order` writes what follows a charge, whoever charged: `pay` here, or an AP2 payment mandate presented for a
checkout signed for the session (service_ap2_acp.py), which passes `PaidBy` — the protocol the sale's payment
counts under (its `payment` thing, `transacted` connections and `payment_event`) and the receipt the order names.
"""

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.commerce import (
    checkout_ontology as ontology,
    checkout_settlement as settlement,
    psp,
    repository_checkout as repo,
    repository_stock as stock,
    webhooks,
)
from services.commerce.models_checkout import SessionRow
from services.commerce.settings import CommerceSettings
from shared.contracts.commerce.payments import Charge, PaymentDeclined
from shared.kernel.ids import uuid7
from shared.runtime.context import WorkContext


def _settings(ctx: WorkContext) -> CommerceSettings:
    return ctx.runtime.settings  # type: ignore[return-value]


def _now() -> datetime:
    return datetime.now(UTC)


async def pay(tx: WorkContext, row: SessionRow, mode: str, token: str | None, key: str | None
              ) -> settlement.Settlement | None:
    """Charge (or defer) and write the outcome in `tx`: the order, its stock sold, its settlement queued (returned;
    None when the PSP declined)."""
    version, org_id = row.version, row.org_id
    provider = psp.provider(_settings(tx))
    charge_id = None
    if mode == "charge":
        try:
            charge = await _charge(tx, provider, row, token or "", key or f"{row.id}:complete:{version}")
        except PaymentDeclined as declined:
            await repo.record_attempt(tx.session, attempt_id=uuid7(), org_id=org_id, checkout_session_id=row.id,
                                      provider=provider.name, outcome="declined", reason=declined.reason,
                                      amount=row.total, currency=row.currency, charge_id=None)
            row.status, row.updated_at = "ready_for_payment", _now()
            row.body = {**row.body, "messages": [*row.body["messages"], {
                "type": "error", "code": "payment_declined", "param": "$.payment_data", "resolution": "recoverable",
                "content_type": "plain", "content": f"the payment was declined: {declined.reason}"}]}
            await repo.save_session(tx.session, row, expected_version=version)
            await ontology.commerce_event(tx, row, "payment_declined", reason=declined.reason)
            return None
        charge_id = charge.id
    return await order(tx, row, mode, provider.name, charge_id, live=provider.live if charge_id else False)


async def _charge(tx: WorkContext, provider: psp.PaymentProvider, row: SessionRow, token: str, key: str) -> Charge:
    """The provider's charge of the session's total. A decline must leave nothing of the charge in `tx` (`pay` goes
    on to record it there): in a savepoint, rolled back on a decline, unless the provider declines only before it
    writes anything (`declines_before_writing`, the test PSP's case), which spares the savepoint's two statements."""
    async with nullcontext() if provider.declines_before_writing else tx.session.begin_nested():
        return await provider.charge(tx, token=token, amount=row.total, currency=row.currency,
                                     checkout_session_id=row.id, idempotency_key=key)


@dataclass(frozen=True, slots=True)
class PaidBy:
    """A session paid through another protocol than ACP's `complete` (an AP2 payment mandate)."""

    protocol: str
    """What the sale's `payment` thing, `transacted` connections and `payment_event` say (revenue by protocol)."""
    receipt_url: str
    """The order's `confirmation.receipt_url`: the receipt of that payment."""
    details: dict[str, Any] = field(default_factory=dict)
    """Carried by the `purchase_completed` event and the settlement (the payment thing and event)."""


async def order(tx: WorkContext, row: SessionRow, mode: str, provider: str, charge_id: str | None, *, live: bool,
                paid_by: PaidBy | None = None) -> settlement.Settlement:
    """The outcome of a charge (`charge_id`; None: a purchase order) written in `tx`: the attempt, the order
    (announced by webhook), the session completed (or pending), its stock sold, its settlement queued (returned)."""
    version, org_id = row.version, row.org_id
    order_status = "manual_review" if mode == "approval" else "confirmed"
    order_id = f"ord_{uuid7().hex}"
    body = await repo.insert_order(tx.session, attempt_id=uuid7(), outcome="succeeded" if charge_id else "deferred",
                                   attempt_provider=provider, order_id=order_id, org_id=org_id,
                                   checkout_session_id=row.id, status=order_status, currency=row.currency,
                                   total=row.total, provider=provider if charge_id else None, charge_id=charge_id,
                                   created_by=tx.auth.actor_id,
                                   body=_order_body(tx, row, order_id, order_status, paid_by))
    await webhooks.queue_order_event(tx, "order_create", body)  # announced to the agent platform after commit
    row.status = {"charge": "completed", "approval": "pending_approval", "terms": "in_progress"}[mode]
    row.order_id, row.updated_at, row.body = order_id, _now(), {**row.body, "order": body}
    await repo.save_session(tx.session, row, expected_version=version)
    event = {"charge": "purchase_completed", "approval": "purchase_pending_approval", "terms": "purchase_on_terms"}
    paid = {"paymentProtocol": paid_by.protocol, **paid_by.details} if paid_by else {}
    await ontology.commerce_event(tx, row, event[mode], orderId=order_id, **paid)
    if any(line.get("available_quantity") is not None for line in row.body["line_items"]):
        await stock.sell(tx.session, org_id, row.id)
    return await settlement.queue(tx, row, order_id, "processed" if charge_id else "requested",
                                  provider=provider, chargeId=charge_id, live=live,
                                  **({"protocol": paid_by.protocol, **paid_by.details} if paid_by else {}))


def _order_body(ctx: WorkContext, row: SessionRow, order_id: str, status: str, paid_by: PaidBy | None = None
                ) -> dict[str, Any]:
    """The ACP Order, its number fields left blank where they go: the insert that draws the number fills them in
    (`repo.insert_order`), so the order and its body are one statement."""
    base = _settings(ctx).commerce_acp_links_base
    lines = [{"id": line["id"], "title": line["name"], "product_id": line["product_id"],
              "quantity": {"ordered": line["quantity"], "current": line["quantity"], "fulfilled": 0},
              "unit_price": line["unit_amount"],
              "subtotal": next(t["amount"] for t in line["totals"] if t["type"] == "subtotal"), "status": "processing"}
             for line in row.body["line_items"]]
    confirmation: dict[str, Any] = {"confirmation_number": ""}
    if row.extras.get("order_notes"):
        confirmation["order_notes"] = row.extras["order_notes"]
    if paid_by is not None:
        confirmation["receipt_url"] = paid_by.receipt_url
    return {"type": "order", "id": order_id, "checkout_session_id": row.id, "order_number": "",
            "permalink_url": f"{base}/orders/{order_id}", "status": status, "line_items": lines,
            "totals": row.body["totals"], "confirmation": confirmation}
