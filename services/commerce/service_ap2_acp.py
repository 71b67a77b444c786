"""AP2 checkout mandates for ACP checkout sessions: the merchant signs an AP2 checkout JWT for one of its ACP
sessions, so a shopping agent's closed checkout mandate can be bound to that session's contents.

The session must be ready for payment; the JWT (the merchant key, as any AP2 checkout) carries its line
items as AP2 items (`{"item": {id, title, price}, "quantity": n}`: what `checkout.line_items` constraints
are matched against), its total and currency, and `acp_checkout_session_id`; it expires no later than the
session. The checkout row keeps the session's id and version: a checkout mandate presented once the session
changed (items, total, status) is refused (`checkout_changed`, service_ap2_present.py), and such a checkout
takes no payment mandate (`acp_session`): the ACP session is paid through ACP's own `complete`.
"""

from datetime import UTC, datetime
from typing import Any

from services.commerce import repository_checkout
from services.commerce.ap2 import constraints, schemas
from services.commerce.models_checkout import SessionRow
from services.commerce.repository_ap2 import CheckoutRow
from services.commerce.service_ap2 import sign_checkout
from services.commerce.service_checkout import status_now
from shared.contracts.commerce.acp import CheckoutNotAllowed, CheckoutSessionNotFound
from shared.contracts.commerce.ap2 import AcpCheckoutSign, Ap2Checkout
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


async def check_session(tx: WorkContext, checkout: CheckoutRow, kind: str) -> None:
    """Refuse a presentation for a checkout signed for an ACP session: a payment mandate always (ACP's `complete`
    pays the session), a checkout mandate once the session is no longer the one signed."""
    if checkout.acp_session_id is None:
        return
    if kind == "payment":
        raise constraints.refuse("acp_session", "this checkout was signed for an ACP checkout session: it takes a "
                                 "checkout mandate, and is paid through ACP", session=checkout.acp_session_id)
    row = await repository_checkout.get_session(tx.session, tx.auth.org_id, checkout.acp_session_id)
    if row is None or row.version != checkout.acp_version or status_now(row) != READY:
        raise constraints.refuse("checkout_changed", "the ACP checkout session changed since this checkout was "
                                 "signed", session=checkout.acp_session_id)
