"""ACP checkout sessions: create, update, read, complete, cancel, with the 2026-04-17 statuses and their rules.

A session is priced from the catalog after every change (`checkout_rules.evaluate`: the open statuses);
the rest of the lifecycle is here:

    open (incomplete | not_ready_for_payment | requires_escalation | authentication_required | ready_for_payment)
      --update--> open                    --cancel--> canceled
      --complete, ready_for_payment--> complete_in_progress (committed before the PSP is asked)
            --charged--> completed (an order)       --declined--> ready_for_payment (+ payment_declined)
            --purchase order, approval_required--> pending_approval (an order in manual_review; cancelable)
            --purchase order on terms--> in_progress (an order, payment due later; cancelable)
      --time (expires_at)--> expired
    completed | canceled | expired: final; update, complete or cancel -> CheckoutNotAllowed (HTTP 405)
    complete_in_progress: another complete -> CheckoutBusy (409) until the charge ends or its lease
    (`LEASE` seconds, a replica that died mid-charge) runs out.

The charge runs through the configured PSP (`psp.provider`) in the transaction that writes the order,
so an order exists exactly when the provider charged (a token spent in a rolled-back transaction is not
spent). Events and the graph: checkout_ontology.py.
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from services.commerce import (
    checkout_ontology as ontology,
    checkout_settlement as settlement,
    psp,
    repository_checkout as repo,
    repository_discounts as discounts,
    repository_stock as stock,
    service_idempotency as idempotency,
    webhooks,
)
from services.commerce.checkout_discounts import submitted_codes
from services.commerce.checkout_payment import pay
from services.commerce.checkout_rules import Evaluation, Inputs, aggregate_items, evaluate, product_id
from services.commerce.models_checkout import SessionRow
from services.commerce.service_products import Catalog, load_products
from services.commerce.settings import CommerceSettings
from shared.contracts.commerce.acp import (
    OPEN_STATUSES,
    CheckoutBusy,
    CheckoutCancel,
    CheckoutComplete,
    CheckoutCreate,
    CheckoutNotAllowed,
    CheckoutNotReady,
    CheckoutPage,
    CheckoutQuery,
    CheckoutSession,
    CheckoutSessionNotFound,
    CheckoutSummary,
    CheckoutTarget,
    CheckoutUpdate,
)
from shared.contracts.commerce.acp_schema import API_VERSION, check
from shared.contracts.commerce.idempotency import IdempotencyClaim
from shared.kernel.errors import Conflict, InvalidRequest
from shared.kernel.ids import uuid7
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext, service_identity
from shared.runtime.outbox import OutboxMessage

LEASE = timedelta(seconds=60)
"""How long a `complete_in_progress` session is held by the complete that claimed it."""
HANDLER_ID = "delegated_card"
_EXTRAS = ("locale", "timezone", "metadata", "quote_id", "order_notes", "discounts", "coupons", "affiliate_attribution")
_ECHOED = ("locale", "timezone", "metadata", "quote_id")


def _settings(ctx: WorkContext) -> CommerceSettings:
    return ctx.runtime.settings  # type: ignore[return-value]


def _now() -> datetime:
    return datetime.now(UTC)


def status_now(row: SessionRow) -> str:
    """The status as of now: an open session past `expires_at` is `expired`, stored or not yet."""
    return "expired" if row.status in OPEN_STATUSES and row.expires_at <= _now() else row.status


def _capabilities(ctx: WorkContext) -> dict[str, Any]:
    settings = _settings(ctx)
    provider = psp.provider(settings)
    base = settings.commerce_acp_links_base
    return {"payment": {"handlers": [{
        "id": HANDLER_ID, "name": "dev.acp.tokenized.card", "display_name": "Card (delegated payment)",
        "version": API_VERSION, "spec": f"{base}/acp/handlers/{HANDLER_ID}", "requires_delegate_payment": True,
        "requires_pci_compliance": False, "psp": provider.name, "config_schema": f"{base}/acp/handlers/config.json",
        "instrument_schemas": [f"{base}/acp/handlers/card.json"], "config": {"test_mode": not provider.live},
    }]}}


def render(ctx: WorkContext, row: SessionRow) -> dict[str, Any]:
    """The ACP `CheckoutSession` (with `order` once there is one) as it stands now."""
    body = {**row.body, "id": row.id, "status": status_now(row), "capabilities": _capabilities(ctx),
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
            "expires_at": row.expires_at.isoformat()}
    if row.buyer:
        body["buyer"] = row.buyer
    if row.fulfillment_details:
        body["fulfillment_details"] = row.fulfillment_details
    body.update({key: row.extras[key] for key in _ECHOED if key in row.extras})
    return body


def _inputs(row: SessionRow) -> Inputs:
    return Inputs(currency=row.currency, items=list(row.items), buyer=row.buyer,
                  fulfillment_details=row.fulfillment_details, selected=list(row.selected_fulfillment_options),
                  extras=dict(row.extras))


async def _catalog(ctx: WorkContext, inputs: Inputs, *, fresh: bool = False) -> Catalog:
    """The session's products, read from the graph before any transaction opens (`fresh`: never a quote's copy)."""
    ids = [found for item in inputs.items if (found := product_id(item["id"])) is not None]
    reader = service_identity(ctx.runtime.name, ctx.auth.org_id, ("things:read",), on_behalf_of=ctx.auth.actor_id)
    return await load_products(ctx, ids, reader, fresh=fresh)


async def _evaluate(tx: WorkContext, session_id: str, inputs: Inputs, catalog: Catalog) -> Evaluation:
    """The session priced in `tx`, the transaction that writes it: the submitted discount codes read, and what other
    sessions hold of its counted products taken off their stock, under those products' locks (held until `tx`
    ends, so a session racing for the last unit waits and then sees this one's hold)."""
    settings, org_id = _settings(tx), tx.auth.org_id
    counted = [p.id for p in catalog.values() if p is not None and p.availability.quantity is not None]
    held: dict[UUID, int] = {}
    if counted:
        await stock.lock(tx.session, org_id, counted)
        held = await stock.held_elsewhere(tx.session, org_id, session_id, counted)
    codes = submitted_codes(inputs.extras)
    found = await discounts.by_codes(tx.session, org_id, codes) if codes else {}
    return evaluate(inputs, catalog, settings.commerce_tax_rates, settings.commerce_acp_links_base,
                    discounts=found, held_elsewhere=held)


async def _hold(tx: WorkContext, row: SessionRow, evaluation: Evaluation) -> None:
    """The session holds its counted items while it is ready for payment, until it expires; nothing otherwise."""
    if evaluation.held or any(line.get("available_quantity") is not None for line in row.body["line_items"]):
        await stock.hold(tx.session, row.org_id, row.id, evaluation.held, row.expires_at)


def _apply(row: SessionRow, inputs: Inputs, evaluation: Evaluation) -> None:
    row.items, row.buyer, row.fulfillment_details = inputs.items, inputs.buyer, inputs.fulfillment_details
    row.selected_fulfillment_options, row.extras = inputs.selected, inputs.extras
    row.status, row.body, row.total, row.updated_at = evaluation.status, evaluation.body, evaluation.total, _now()


async def _read(ctx: WorkContext, session_id: str) -> SessionRow:
    async with ctx.transaction() as tx:
        row = await repo.get_session(tx.session, ctx.auth.org_id, session_id)
    if row is None:
        raise CheckoutSessionNotFound(f"no checkout session {session_id!r}", {"id": session_id})
    return row


def _not_allowed(row: SessionRow, verb: str, status: str) -> CheckoutNotAllowed:
    return CheckoutNotAllowed(f"a {status} checkout session cannot be {verb}", {"id": row.id, "status": status})


async def _expire(ctx: WorkContext, row: SessionRow, verb: str) -> CheckoutNotAllowed:
    """Store the `expired` status of a session found past its time; the error to raise."""
    async with ctx.transaction() as tx:
        locked = await repo.get_session(tx.session, ctx.auth.org_id, row.id, lock=True)
        if locked is not None and locked.status in OPEN_STATUSES:
            version, locked.status, locked.updated_at = locked.version, "expired", _now()
            await repo.save_session(tx.session, locked, expected_version=version)
            await stock.release(tx.session, locked.org_id, locked.id)
            await ontology.commerce_event(tx, locked, "checkout_expired")
    return _not_allowed(row, verb, "expired")


async def create(ctx: WorkContext, payload: CheckoutCreate) -> CheckoutSession:
    require(ctx.auth, "acp", "checkout_create")
    request = payload.request
    check("CheckoutSessionCreateRequest", request)
    currency = request["currency"].lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise InvalidRequest(f"{request['currency']!r} is not an ISO 4217 currency code",
                             {"param": "$.currency", "acp_code": "invalid"})
    inputs = Inputs(currency=currency, items=aggregate_items(request["line_items"]),
                    buyer=request.get("buyer"), fulfillment_details=request.get("fulfillment_details"),
                    extras={key: request[key] for key in _EXTRAS if key in request})
    catalog = await _catalog(ctx, inputs)
    now, uid = _now(), uuid7()
    async with ctx.transaction() as tx:
        if replay := await idempotency.claim(tx, payload.idempotency):
            return CheckoutSession(session={}, replay=replay)
        evaluation = await _evaluate(tx, f"cs_{uid.hex}", inputs, catalog)
        row = SessionRow(id=f"cs_{uid.hex}", uid=uid, org_id=ctx.auth.org_id, status=evaluation.status,
                         currency=inputs.currency, items=inputs.items, buyer=inputs.buyer,
                         fulfillment_details=inputs.fulfillment_details, selected_fulfillment_options=[],
                         extras=inputs.extras, body=evaluation.body, total=evaluation.total, order_id=None, version=1,
                         created_by=ctx.auth.actor_id, created_at=now, updated_at=now,
                         expires_at=now + timedelta(seconds=_settings(ctx).commerce_acp_session_ttl))
        await repo.insert_session(tx.session, row)
        await _hold(tx, row, evaluation)
        return await _answer(tx, payload.idempotency, row,
                             ontology.commerce_event_message(tx, row, "purchase_initiated"))


async def _answer(tx: WorkContext, claim: IdempotencyClaim | None, row: SessionRow,
                  event: OutboxMessage | None = None) -> CheckoutSession:
    """The session as answered, stored under the request's idempotency claim in `tx` (the work's transaction), with
    the step's `event` staged by the same statement."""
    session = render(tx, row)
    return CheckoutSession(session=session, stored=await idempotency.store(tx, claim, session,
                                                                          [event] if event else []))


def _updatable(row: SessionRow) -> str:
    """The status now of a session about to be updated; CheckoutBusy / CheckoutNotAllowed when it cannot be
    ("expired" while not stored so: the caller stores it, `_expire`)."""
    status = status_now(row)
    if status == "complete_in_progress":
        raise CheckoutBusy("the checkout session is being completed", {"id": row.id})
    if status not in (*OPEN_STATUSES, "expired") or row.status == "expired":
        raise _not_allowed(row, "updated", status)
    return status


def _updated_inputs(row: SessionRow, request: dict[str, Any]) -> Inputs:
    inputs = _inputs(row)
    if "line_items" in request:
        inputs.items = aggregate_items(request["line_items"])
    if "buyer" in request:
        inputs.buyer = request["buyer"]
    if "fulfillment_details" in request:
        inputs.fulfillment_details = request["fulfillment_details"]
    if "selected_fulfillment_options" in request:
        inputs.selected = request["selected_fulfillment_options"]
    inputs.extras.update({key: request[key] for key in _EXTRAS if key in request})
    return inputs


async def update(ctx: WorkContext, payload: CheckoutUpdate) -> CheckoutSession:
    """New items are priced first and the session read and written in one transaction (locked); other changes
    read the session first (its items are priced), then write it if nobody changed it meanwhile."""
    require(ctx.auth, "acp", "checkout_update")
    request = payload.request
    check("CheckoutSessionUpdateRequest", request)
    new_items = "line_items" in request
    known = await _catalog(ctx, Inputs("", aggregate_items(request["line_items"]))) if new_items else None
    for _ in range(3):  # a concurrent update moved the version: evaluate again on what it wrote
        row: SessionRow | None = None
        if known is None:
            row = await _read(ctx, payload.id)
            if _updatable(row) == "expired":
                raise await _expire(ctx, row, "updated")
        catalog = known if known is not None else await _catalog(ctx, _updated_inputs(row, request))  # type: ignore[arg-type]
        async with ctx.transaction() as tx:
            if replay := await idempotency.claim(tx, payload.idempotency):
                return CheckoutSession(session={}, replay=replay)
            if known is not None:
                row = await repo.get_session(tx.session, ctx.auth.org_id, payload.id, lock=True)
                if row is None:
                    raise CheckoutSessionNotFound(f"no checkout session {payload.id!r}", {"id": payload.id})
                if _updatable(row) == "expired":
                    break
            assert row is not None
            inputs = _updated_inputs(row, request)
            evaluation = await _evaluate(tx, row.id, inputs, catalog)
            version = row.version
            _apply(row, inputs, evaluation)
            if await repo.save_session(tx.session, row, expected_version=version):
                await _hold(tx, row, evaluation)
                return await _answer(tx, payload.idempotency, row,
                                     ontology.commerce_event_message(tx, row, "checkout_updated"))
    if row is not None and status_now(row) == "expired":
        raise await _expire(ctx, row, "updated")
    raise Conflict("the checkout session keeps changing: retry", {"id": payload.id})


def _payment_mode(payment_data: dict[str, Any]) -> tuple[str, str | None]:
    """("charge", token) for an instrument; ("approval" | "terms", None) for a purchase order."""
    if "instrument" in payment_data:
        if payment_data.get("handler_id") != HANDLER_ID:
            raise InvalidRequest(f"unknown payment handler {payment_data.get('handler_id')!r}",
                                 {"param": "$.payment_data.handler_id", "acp_code": "invalid"})
        return "charge", payment_data["instrument"]["credential"]["token"]
    return ("approval" if payment_data.get("approval_required") else "terms"), None


async def complete(ctx: WorkContext, payload: CheckoutComplete) -> CheckoutSession:
    require(ctx.auth, "acp", "checkout_complete")
    request = payload.request
    check("CheckoutSessionCompleteRequest", request)
    mode, token = _payment_mode(request["payment_data"])
    row = await _read(ctx, payload.id)
    status = status_now(row)
    if status == "expired" and row.status != "expired":
        raise await _expire(ctx, row, "completed")
    if status == "complete_in_progress" and row.updated_at + LEASE > _now():
        raise CheckoutBusy("the checkout session is being completed", {"id": row.id})
    if status not in (*OPEN_STATUSES, "complete_in_progress"):
        raise _not_allowed(row, "completed", status)
    inputs = _inputs(row)
    if "buyer" in request:
        inputs.buyer = request["buyer"]
    if "order_notes" in request:
        inputs.extras["order_notes"] = request["order_notes"]
    catalog = await _catalog(ctx, inputs, fresh=True)  # what is charged is the catalog's now
    async with ctx.transaction() as tx:  # claim: visible to every replica before the PSP is asked
        if replay := await idempotency.claim(tx, payload.idempotency):
            return CheckoutSession(session={}, replay=replay)
        evaluation = await _evaluate(tx, row.id, inputs, catalog)
        if evaluation.status != "ready_for_payment":
            raise CheckoutNotReady(f"the checkout session is {evaluation.status}, not ready_for_payment",
                                   {"id": row.id, "status": evaluation.status, "param": "$.status",
                                    "messages": evaluation.body["messages"]})
        _apply(row, inputs, evaluation)
        version, row.status = row.version, "complete_in_progress"
        if not await repo.save_session(tx.session, row, expected_version=version):
            raise CheckoutBusy("the checkout session changed while it was being completed", {"id": row.id})
        await _hold(tx, row, evaluation)
    claimed_version, claimed_body = row.version, row.body
    try:
        async with ctx.transaction() as tx:
            if evaluation.discount_id is not None and not await discounts.redeem(tx.session, row.org_id,
                                                                                 evaluation.discount_id):
                raise CheckoutNotReady("the discount code can no longer be redeemed: update the session",
                                       {"id": row.id, "param": "$.discounts", "acp_code": "invalid"})
            queued = await pay(tx, row, mode, token, payload.idempotency_key)
            answer = await _answer(tx, payload.idempotency, row)
    except Exception:
        async with ctx.transaction() as tx:  # nothing was charged (the charge's transaction rolled back)
            row.status, row.body, row.order_id = "ready_for_payment", claimed_body, None
            await repo.save_session(tx.session, row, expected_version=claimed_version)
        raise
    if queued is not None:
        settlement.soon(ctx, row, queued)
    return answer


async def cancel(ctx: WorkContext, payload: CheckoutCancel) -> CheckoutSession:
    require(ctx.auth, "acp", "checkout_cancel")
    check("CancelSessionRequest", payload.request)
    async with ctx.transaction() as tx:
        if replay := await idempotency.claim(tx, payload.idempotency):
            return CheckoutSession(session={}, replay=replay)
        row = await repo.get_session(tx.session, ctx.auth.org_id, payload.id, lock=True)
        if row is None:
            raise CheckoutSessionNotFound(f"no checkout session {payload.id!r}", {"id": payload.id})
        status = status_now(row)
        if status == "complete_in_progress":
            raise CheckoutBusy("the checkout session is being completed", {"id": row.id})
        if status not in (*OPEN_STATUSES, "pending_approval", "in_progress"):
            raise _not_allowed(row, "canceled", status)
        version, row.status, row.updated_at = row.version, "canceled", _now()
        payment_id = await repo.order_payment(tx.session, row.org_id, row.order_id) if row.order_id else None
        if row.order_id and "order" in row.body:
            row.body = {**row.body, "order": {**row.body["order"], "status": "canceled"}}
            await repo.set_order_body(tx.session, row.org_id, row.order_id, row.body["order"], status="canceled")
            await webhooks.queue_order_event(tx, "order_update", row.body["order"])
        await repo.save_session(tx.session, row, expected_version=version)
        await stock.release(tx.session, row.org_id, row.id)
        reason = (payload.request.get("intent_trace") or {}).get("reason_code")
        await ontology.commerce_event(tx, row, "checkout_canceled", **({"reason": reason} if reason else {}))
        answer = await _answer(tx, payload.idempotency, row)
    await ontology.settle_payment(ctx, row, payment_id, "failed")  # a deferred payment that will not come
    return answer


async def get(ctx: WorkContext, payload: CheckoutTarget) -> CheckoutSession:
    require(ctx.auth, "acp", "read")
    row = await repo.get_session(ctx.session, ctx.auth.org_id, payload.id)
    if row is None:
        raise CheckoutSessionNotFound(f"no checkout session {payload.id!r}", {"id": payload.id})
    return CheckoutSession(session=render(ctx, row))


async def list_sessions(ctx: WorkContext, query: CheckoutQuery) -> CheckoutPage:
    require(ctx.auth, "acp", "list")
    rows = await repo.list_sessions(ctx.session, ctx.auth.org_id, query.status, query.before, query.limit)
    summaries = [CheckoutSummary(id=r.id, status=status_now(r), currency=r.currency, total=r.total,
                                 items=sum(i["quantity"] for i in r.items), order_id=r.order_id,
                                 created_at=r.created_at, updated_at=r.updated_at, expires_at=r.expires_at)
                 for r in rows]
    return CheckoutPage(sessions=summaries, next_before=rows[-1].created_at if len(rows) == query.limit else None)
