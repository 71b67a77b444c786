"""What an ACP checkout leaves in the ontology (seed 003, "ACP Protocol"), with `metadata.protocol = "acp"`.

- `commerce_event`s for each step, in the checkout's own transactions (`purchase_initiated`,
  `checkout_updated`, `payment_declined`, `purchase_completed`, `purchase_pending_approval`,
  `purchase_on_terms`, `checkout_canceled`, `checkout_expired`);
- after a sale, off the request path (checkout_settlement.py: queued in the pay transaction, so never lost,
  retried until done): the agent platform as an `external_agent` (one per API key actor, the graph's
  idempotency key, remembered per replica), the session's `payment` thing with its outcome (`protocol: acp`,
  amount, currency, status `processed` for a charge, `requested` for a purchase order) and, written with it
  in one graph request, a `transacted` connection from the buyer to each product sold (the merchant's side of
  the sale: what it sold stands for the org, as x402's payments do), each counted product's stock
  taken down (`take_stock`), and then, once, the `payment_event` (its `amount` money: minor units /
  10^exponent, `amountMinor` keeps the integer) whose target is the payment thing, so revenue counts the sale.
A graph failure never undoes a charge: the settlement is tried again. A session paid by an AP2 payment mandate
(service_ap2_acp.py) settles the same way, but its payment thing, connections and `payment_event` say
`protocol: ap2` (the settlement's details): revenue by protocol counts the sale once, as AP2.
"""

import logging
from typing import Any
from uuid import UUID

from services.commerce.models_checkout import SessionRow
from services.commerce.totals import to_major
from shared.contracts.graph import THING_CREATE, THING_GET, THING_UPDATE
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Conflict, OneError
from shared.kernel.events import EventPayload
from shared.kernel.ontology import ConnectionType, EventType, ThingType
from shared.runtime.context import WorkContext, service_identity
from shared.runtime.outbox import OutboxMessage

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
    await ctx.runtime.outbox.add_many(ctx.session, [commerce_event_message(ctx, row, event, **extra)])


def commerce_event_message(ctx: WorkContext, row: SessionRow, event: str, **extra: Any) -> OutboxMessage:
    """The `commerce_event` about the session, for the statement that ends the step to stage (`_answer`)."""
    payload = EventPayload(target_id=row.uid, target_type="checkout_session",
                           metadata=commerce_metadata(row, event, **extra))
    return ctx.event_messages([(EventType.COMMERCE_EVENT, payload)])[0]


async def payment_event(ctx: WorkContext, row: SessionRow, status: str, payment_id: UUID | None,
                        **extra: Any) -> None:
    """The sale's `payment_event`, under `extra["protocol"]` when the session was paid through another protocol
    (an AP2 payment mandate: revenue by protocol counts it as AP2, once), else ACP."""
    protocol = Protocol(extra.get("protocol", PROTOCOL))
    await ctx.emit(EventType.PAYMENT_EVENT, target_id=payment_id, target_type="payment" if payment_id else None,
                   protocol=protocol, metadata={"protocol": PROTOCOL, "status": status, "checkoutSessionId": row.id, **money(row),
                             **({"paymentId": str(payment_id)} if payment_id else {}), **extra})


async def _graph(ctx: WorkContext, spec: Any, payload: dict[str, Any]) -> Any:
    """A graph request as commerce itself in the caller's org (the graph takes `native` messages)."""
    auth = service_identity(ctx.runtime.name, ctx.auth.org_id, GRANTS, on_behalf_of=ctx.auth.actor_id)
    return await ctx.call(spec, payload, auth=auth, protocol=Protocol.NATIVE)


_BUYERS: dict[tuple[UUID, UUID], UUID] = {}
"""The agent platform's `external_agent` per (org, API key actor): created once (the graph's idempotency key makes
the create idempotent), remembered by each replica so a sale does not ask again."""


async def buyer(ctx: WorkContext) -> UUID:
    """The agent platform that buys, as an `external_agent` thing (one per API key actor)."""
    known = (ctx.auth.org_id, ctx.auth.actor_id)
    if (found := _BUYERS.get(known)) is not None:
        return found
    thing = await _graph(ctx, THING_CREATE, {
        "type": ThingType.EXTERNAL_AGENT, "name": f"ACP agent platform {ctx.auth.actor_id}", "status": "active",
        "idempotency_key": f"acp.buyer:{ctx.auth.actor_id}",
        "properties": {"platform": "custom", "agentId": f"acp:{ctx.auth.actor_id}", "name": "ACP agent platform",
                       "capabilities": ["acp"], "protocol": PROTOCOL},
    })
    if len(_BUYERS) > 10_000:
        _BUYERS.clear()
    _BUYERS[known] = thing.id
    return thing.id


async def payment(ctx: WorkContext, row: SessionRow, buyer_id: UUID, status: str, **properties: Any) -> UUID:
    """The session's `payment` thing with its outcome (one per session: the graph's idempotency key) and, for a sale
    (`processed`, `requested`), the merchant's side of it: a `transacted` connection from the buyer to each product
    sold (`properties["protocol"]`: what paid it), written with the thing, all or none, and once (a retry repeats the
    key: the graph answers the stored thing and writes no link again)."""
    sold = _sale_links(row, buyer_id, properties.get("protocol", PROTOCOL)) if status in ("processed", "requested") \
        else []
    thing = await _graph(ctx, THING_CREATE, {
        "type": ThingType.PAYMENT, "name": f"ACP payment for {row.id}", "status": "active",
        "idempotency_key": f"acp.payment:{row.id}", "connections": sold,
        "properties": {**money(row), "protocol": PROTOCOL, "status": status, "checkoutSessionId": row.id,
                       "orderId": row.order_id, "buyerId": str(buyer_id), **properties},
    })
    return thing.id


def _sale_links(row: SessionRow, buyer_id: UUID, protocol: str) -> list[dict[str, Any]]:
    meta = {"protocol": protocol, "transactionType": "payment", "checkoutSessionId": row.id, "orderId": row.order_id,
            "currency": row.currency}
    return [{"from_id": str(buyer_id), "to_id": line["product_id"], "type": ConnectionType.TRANSACTED,
             "metadata": {**meta, **money(row, next(t["amount"] for t in line["totals"] if t["type"] == "total")),
                          "quantity": line["quantity"]}}
            for line in row.body["line_items"]]


async def settle_payment(ctx: WorkContext, row: SessionRow, payment_id: UUID | None, status: str) -> None:
    """A payment thing's later outcome (a deferred payment canceled: `failed`); a graph failure is logged."""
    if payment_id is None:
        return
    try:
        await _graph(ctx, THING_UPDATE, {"id": str(payment_id), "properties": {"status": status}})
    except OneError:
        log.exception("acp: payment %s of checkout %s not settled in the graph", payment_id, row.id)


async def take_stock(ctx: WorkContext, row: SessionRow) -> list[UUID]:
    """After a sale: each counted product's `availability.quantity` goes down by what was sold (`out_of_stock` at
    zero), a compare-and-set on the thing's version, retried when another sale moved it first; the products
    whose stock was taken (a graph failure is logged: that product's sold reservation keeps counting)."""
    taken: list[UUID] = []
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
                taken.append(UUID(line["product_id"]))
                break
            except Conflict:
                continue
            except OneError:
                log.exception("acp: the stock of product %s was not taken for checkout %s", line["product_id"], row.id)
                break
    return taken
