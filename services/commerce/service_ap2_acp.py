"""AP2 checkout mandates for ACP checkout sessions: the merchant signs an AP2 checkout JWT for one of its ACP
sessions, so a shopping agent's closed checkout mandate can be bound to that session's contents.

The session must be ready for payment; the JWT (the merchant key, as any AP2 checkout) carries its line
items as AP2 items (`{"item": {id, title, price}, "quantity": n}`: what `checkout.line_items` constraints
are matched against), its total and currency, and `acp_checkout_session_id`; it expires no later than the
session. The checkout row keeps the session's id and version: a checkout mandate presented once the session
changed (items, total, status) is refused (`checkout_changed`, service_ap2_present.py).

A closed payment mandate presented for such a checkout pays AND completes the session, in the presentation's
transaction, under the checkout's lock: `check_session` locks the session, finds it still as signed (version,
ready for payment; `checkout_changed` otherwise: an ACP `complete` came first) and redeems its discount code as
ACP's `complete` would; once the mandate is verified and charged (service_ap2_present._pay), `complete_session`
leaves what ACP's `complete` leaves (checkout_payment.order: the attempt, the order — its
`confirmation.receipt_url` naming the AP2 receipt — announced by webhook, the session `completed`, its stock
sold, its settlement queued), except that the sale settles as AP2's (`PaidBy("ap2")`): its payment thing,
`transacted` connections and single `payment_event` say `protocol: ap2`. A refusal or a decline rolls the
presentation's savepoint back: the session is left ready for payment. Later, ACP's `complete` finds the session
completed (405), and another presentation finds the checkout paid (`nonce_reused`).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.commerce import checkout_settlement as settlement, repository_checkout, repository_discounts
from services.commerce.ap2 import constraints, schemas
from services.commerce.checkout_payment import PaidBy, order
from services.commerce.models_checkout import SessionRow
from services.commerce.repository_ap2 import CheckoutRow
from services.commerce.service_ap2 import sign_checkout
from services.commerce.service_checkout import status_now
from shared.contracts.commerce.acp import CheckoutNotAllowed, CheckoutSessionNotFound
from shared.contracts.commerce.ap2 import AcpCheckoutSign, Ap2Checkout
from shared.contracts.commerce.payments import Charge
from shared.kernel.errors import InvalidRequest
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

READY = "ready_for_payment"


def _items(row: SessionRow) -> list[dict[str, Any]]:
    items = [{"item": {"id": str(line.get("product_id") or line["id"]), "title": str(line.get("name") or line["id"]),
                       "price": int(line["unit_amount"])}, "quantity": int(line.get("quantity", 1))}
             for line in row.body.get("line_items") or []]
    for entry in items:
        if problems := schemas.errors("types/item.json", entry["item"]):
            raise InvalidRequest("a line item of the session makes no AP2 item", {"errors": problems[:5]})
    return items


async def checkout_for_session(ctx: WorkContext, payload: AcpCheckoutSign) -> Ap2Checkout:
    require(ctx.auth, "mandates", "checkout")
    row = await repository_checkout.get_session(ctx.session, ctx.auth.org_id, payload.session_id)
    if row is None:
        raise CheckoutSessionNotFound(f"no checkout session {payload.session_id!r}", {"id": payload.session_id})
    status = status_now(row)
    if status != READY:
        raise CheckoutNotAllowed("an AP2 checkout is signed for a session ready for payment",
                                 {"id": row.id, "status": status})
    left = int((row.expires_at - datetime.now(UTC)).total_seconds())
    return await sign_checkout(ctx, row.total, row.currency.upper(), _items(row), payload.merchant_name,
                               max(1, min(payload.ttl_seconds, left)), acp=(row.id, row.version))


async def check_session(tx: WorkContext, checkout: CheckoutRow, kind: str) -> SessionRow | None:
    """For a checkout signed for an ACP session: the session, still as signed, or `checkout_changed`; locked and
    its discount code redeemed for a payment (which completes it in this transaction). None for a plain checkout."""
    if checkout.acp_session_id is None:
        return None
    row = await repository_checkout.get_session(tx.session, tx.auth.org_id, checkout.acp_session_id,
                                                lock=kind == "payment")
    if row is None or row.version != checkout.acp_version or status_now(row) != READY:
        raise constraints.refuse("checkout_changed", "the ACP checkout session changed since this checkout was "
                                 "signed", session=checkout.acp_session_id)
    discount = _discount_id(row) if kind == "payment" else None
    if discount is not None and not await repository_discounts.redeem(tx.session, row.org_id, discount):
        raise constraints.refuse("checkout_changed", "the ACP checkout session's discount code can no longer be "
                                 "redeemed", session=row.id)
    return row


def _discount_id(row: SessionRow) -> UUID | None:
    """The discount the session applies (checkout_discounts: one code per session), to redeem as it is paid."""
    applied = (row.body.get("discounts") or {}).get("applied") or []
    return UUID(applied[0]["coupon"]["id"]) if applied else None


@dataclass(frozen=True, slots=True)
class Sale:
    """An ACP session an AP2 payment mandate completed: its settlement runs once the presentation committed."""

    row: SessionRow
    queued: settlement.Settlement


async def complete_session(tx: WorkContext, row: SessionRow, charge: Charge, receipt_id: UUID,
                           details: dict[str, Any]) -> Sale:
    """The session (locked by `check_session`) completed with its order, as ACP's `complete` leaves it, paid by
    the AP2 receipt `receipt_id` (`details`: what the events say of the mandate)."""
    paid_by = PaidBy("ap2", f"urn:ap2:receipt:{receipt_id}", {**details, "direction": "incoming"})
    return Sale(row, await order(tx, row, "charge", charge.provider, charge.id, live=charge.live, paid_by=paid_by))


def settle_soon(ctx: WorkContext, sale: Sale) -> None:
    """After the presentation committed: the sale's graph side, in the background (checkout_settlement.soon)."""
    settlement.soon(ctx, sale.row, sale.queued)
