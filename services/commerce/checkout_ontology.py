"""What an ACP checkout leaves in the ontology (seed 003, "ACP Protocol"), with `metadata.protocol = "acp"`.

- events, in the checkout's own transactions (so the event log and revenue never miss a sale):
  `commerce_event`s for each step (`purchase_initiated`, `checkout_updated`, `payment_declined`,
  `purchase_completed`, `purchase_pending_approval`, `purchase_on_terms`, `checkout_canceled`) and a
  `payment_event` (`status: processed` for a charge, `requested` for a purchase order) whose `amount` is
  money (minor units / 10^exponent, `amountMinor` keeps the integer) in the session's `currency`;
- things and connections, written by commerce itself (its own grants) before and after the charge: the
  agent platform as an `external_agent` (one per API key actor, the graph's idempotency key), a `payment`
  thing per session (`protocol: acp`, amount, currency, status `pending` -> `processed` / `failed`), and a
  `transacted` connection from the buyer to each product sold (the merchant's side of the sale: tenancy
  keeps no graph thing for an org, so what it sold stands for it, as x402's payments do), its metadata the
  line's amount, quantity, the payment and the order; after a sale, each counted product's stock goes down
  (`take_stock`). A graph failure is logged and never undoes a charge.
"""

import logging
from typing import Any
from uuid import UUID

from services.commerce.models_checkout import SessionRow
from services.commerce.totals import to_major
from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE, THING_GET, THING_UPDATE
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Conflict, OneError
from shared.kernel.ontology import ConnectionType, EventType, ThingType
from shared.runtime.context import WorkContext, service_identity

log = logging.getLogger(__name__)
PROTOCOL = "acp"
GRANTS = ("things:create", "things:read", "things:update", "connections:create", "quotas:consume")
"""What commerce may do in the graph of the org it serves, whoever asked (an agent platform's key may hold
nothing but `checkout:*`)."""


def money(row: SessionRow, amount: int | None = None) -> dict[str, Any]:
    amount = row.total if amount is None else amount
    return {"amount": float(to_major(amount, row.currency)), "amountMinor": amount, "currency": row.currency}


def commerce_metadata(row: SessionRow, event: str, **extra: Any) -> dict[str, Any]:
    products = [item["id"] for item in row.items]
    return {"protocol": PROTOCOL, "eventType": event, "checkoutSessionId": row.id, "status": row.status,
            "productIds": products, **money(row), **extra}


async def commerce_event(ctx: WorkContext, row: SessionRow, event: str, **extra: Any) -> None:
    """Stage one `commerce_event` about the session in `ctx`'s transaction."""
    await ctx.emit(EventType.COMMERCE_EVENT, target_id=row.uid, target_type="checkout_session",
                   metadata=commerce_metadata(row, event, **extra))


async def payment_event(ctx: WorkContext, row: SessionRow, status: str, payment_id: UUID | None,
                        **extra: Any) -> None:
    await ctx.emit(EventType.PAYMENT_EVENT, target_id=payment_id, target_type="payment" if payment_id else None,
                   metadata={"protocol": PROTOCOL, "status": status, "checkoutSessionId": row.id, **money(row),
                             **({"paymentId": str(payment_id)} if payment_id else {}), **extra})


async def _graph(ctx: WorkContext, spec: Any, payload: dict[str, Any]) -> Any:
    """A graph request as commerce itself in the caller's org (the graph takes `native` messages)."""
    auth = service_identity(ctx.runtime.name, ctx.auth.org_id, GRANTS, on_behalf_of=ctx.auth.actor_id)
    return await ctx.call(spec, payload, auth=auth, protocol=Protocol.NATIVE)


async def prepare_payment(ctx: WorkContext, row: SessionRow) -> tuple[UUID | None, UUID | None]:
    """(buyer, payment) things before the charge: the agent platform, and the session's `pending` payment."""
    try:
        buyer = await _graph(ctx, THING_CREATE, {
            "type": ThingType.EXTERNAL_AGENT, "name": f"ACP agent platform {ctx.auth.actor_id}", "status": "active",
            "idempotency_key": f"acp.buyer:{ctx.auth.actor_id}",
            "properties": {"platform": "custom", "agentId": f"acp:{ctx.auth.actor_id}", "name": "ACP agent platform",
                           "capabilities": ["acp"], "protocol": PROTOCOL},
        })
        payment = await _graph(ctx, THING_CREATE, {
            "type": ThingType.PAYMENT, "name": f"ACP payment for {row.id}", "status": "active",
            "idempotency_key": f"acp.payment:{row.id}",
            "properties": {**money(row), "protocol": PROTOCOL, "status": "pending", "checkoutSessionId": row.id,
                           "buyerId": str(buyer.id)},
        })
        return buyer.id, payment.id
    except OneError:
        log.exception("acp: no payment thing for checkout %s of org %s", row.id, ctx.auth.org_id)
        return None, None


async def settle_payment(ctx: WorkContext, row: SessionRow, buyer_id: UUID | None, payment_id: UUID | None,
                         status: str, **properties: Any) -> None:
    """After the charge's commit: the payment thing's outcome and, for a sale, its connections."""
    if payment_id is None:
        return
    try:
        await _graph(ctx, THING_UPDATE, {"id": str(payment_id), "properties": {"status": status, **properties}})
        if status not in ("processed", "requested"):
            return
        meta = {"protocol": PROTOCOL, "transactionType": "payment", "paymentId": str(payment_id),
                "checkoutSessionId": row.id, "orderId": row.order_id, "currency": row.currency}
        if buyer_id is None:
            return
        for line in row.body["line_items"]:  # the merchant's side of the sale: what it sold
            amount = next(t["amount"] for t in line["totals"] if t["type"] == "total")
            await _graph(ctx, CONNECTION_CREATE, {"from_id": str(buyer_id), "to_id": line["product_id"],
                                                  "type": ConnectionType.TRANSACTED, "metadata": {
                                                      **meta, **money(row, amount), "quantity": line["quantity"]}})
    except OneError:
        log.exception("acp: payment %s of checkout %s not settled in the graph", payment_id, row.id)


async def take_stock(ctx: WorkContext, row: SessionRow) -> None:
    """After a sale: each counted product's `availability.quantity` goes down by what was sold (`out_of_stock` at
    zero), a compare-and-set on the thing's version, retried when another sale moved it first."""
    for line in row.body["line_items"]:
        if line.get("available_quantity") is None:
            continue
        for _ in range(5):
            try:
                thing = (await _graph(ctx, THING_GET, {"id": line["product_id"]})).thing
                availability = dict(thing.properties.get("availability") or {})
                if availability.get("quantity") is None:
                    break
                left = max(0, int(availability["quantity"]) - line["quantity"])
                availability.update(quantity=left, status="out_of_stock" if left == 0 else availability.get(
                    "status", "in_stock"))
                await _graph(ctx, THING_UPDATE, {"id": line["product_id"], "expected_version": thing.version,
                                                 "properties": {"availability": availability}})
                break
            except Conflict:
                continue
            except OneError:
                log.exception("acp: the stock of product %s was not taken for checkout %s", line["product_id"], row.id)
                break
