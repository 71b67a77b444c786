"""AP2 v2, the shopping agent's side: close a granted open mandate for exactly one purchase, within its constraints.

Only the agents service acting for the agent that holds the mandate gets a closed mandate (as the org
wallet signs only for its paying agent). Commerce reads the merchant's checkout JWT (merchant, total),
builds the closed payment mandate for exactly that merchant, amount and checkout (`transaction_id` = its
hash), refuses locally what the open mandate's constraints forbid — counting every closed mandate it
signed under it, under the mandate row's lock, so concurrent purchases never overspend the budget —
and signs the key-binding hop with the agent's sealed key for the merchant (`aud`) and its nonce. Each
decision is a `price_event` (`action: checked`, `withinBudget`); each signature a `mandate_event`. A payment's
`payment.reference` is checked as the merchant will (`constraints.check_reference`): against the open
checkout mandate under which this agent closed a checkout mandate for the same checkout, if it did.
The checkout JWT's merchant signature is the caller's to check (the A2A client knows the merchant's JWKS).

`release`: when the merchant definitely refused the presented chain (the agents service says so, for the
agent holding it), the closed mandate becomes `released` and its use no longer counts — once only (a
conditional update, under the open mandate's row lock, as `close` counts). A merchant on this platform
never accepts a chain it refused (service_ap2_present.py), so a released use cannot be charged later.
"""

import time
from datetime import UTC, datetime
from typing import Any

from services.commerce import ap2_ontology as onto, repository_ap2 as repo
from services.commerce.ap2 import constraints, credentials, schemas
from services.commerce.ap2.narrowing import check_checkout
from services.commerce.ap2.verify import CHECKOUT_VCT, OPEN_CHECKOUT_VCT, PAYMENT_VCT
from services.commerce.service_ap2 import signing_key
from shared.contracts.commerce.ap2 import (
    ClosedMandate,
    MandateClose,
    MandateRefused,
    MandateRelease,
    ReleasedMandate,
)
from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

HOLDING_ROLE = "service:agents"


def _holding(ctx: WorkContext, agent_id: Any, verb: str) -> None:
    """Only the agents service, acting for the agent holding the mandate, may have it closed or released."""
    if ctx.auth.role != HOLDING_ROLE or ctx.auth.actor_id != agent_id:
        raise Forbidden(f"a mandate is {verb} only for the agent holding it, asked by the agents service")


def _purchase(checkout_jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payee, payment_amount) of a merchant's checkout JWT."""
    try:
        claims = credentials.unverified_claims(checkout_jwt)
        merchant, total = claims["merchant"], claims["total"]
        payee = {"id": str(merchant["id"]), "name": str(merchant["name"])}
        amount = {"amount": int(total["amount"]), "currency": str(total["currency"])}
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("not an AP2 checkout JWT (merchant, total)") from None
    return payee, amount


async def close(ctx: WorkContext, payload: MandateClose) -> ClosedMandate:
    require(ctx.auth, "mandates", "sign")
    org_id, now = ctx.auth.org_id, int(time.time())
    payee, amount = _purchase(payload.checkout_jwt)
    try:
        async with ctx.transaction() as tx:
            granted = await repo.get_granted(tx.session, org_id, payload.mandate_id)
            if granted is None:
                raise NotFound("no such mandate granted by this org", {"mandate_id": str(payload.mandate_id)})
            _holding(ctx, granted.agent_id, "closed")
            if granted.status != "active":
                raise constraints.refuse("revoked", "the mandate is not active", status=granted.status)
            if granted.expires_at is not None and granted.expires_at.timestamp() < now:
                raise constraints.refuse("expired", "the mandate has expired")
            open_mandate = granted.claims
            if open_mandate.get("vct") == OPEN_CHECKOUT_VCT:
                return await _close_checkout(tx, granted, payload, payee, amount, now)
            closed = {"vct": PAYMENT_VCT, "transaction_id": credentials.digest(payload.checkout_jwt),
                      "payee": payee, "payment_amount": amount,
                      "payment_instrument": payload.payment_instrument or open_mandate.get("payment_instrument")
                      or {"id": f"one:{org_id}", "type": "mandate"},
                      "iat": now, "exp": now + ctx.runtime.settings.commerce_ap2_closed_ttl}
            if problems := schemas.errors(schemas.PAYMENT, closed):
                raise InvalidRequest("the purchase makes no valid payment mandate", {"errors": problems[:5]})
            await _check_reference(tx, granted, closed["transaction_id"])
            used = await repo.granted_usage(tx.session, org_id, granted.id)
            usage = constraints.Usage(used.uses, used.spent,
                                      used.last_used_at.timestamp() if used.last_used_at else None)
            constraints.check(open_mandate, closed, usage, now)
            _, agent_key = await signing_key(tx, "agent", granted.agent_id)
            chain = credentials.close(granted.credential, agent_key, closed, payee["id"], payload.nonce, iat=now)
            closed_id = await repo.insert_mandate(tx.session, {
                "id": uuid7(), "org_id": org_id, "kind": "closed", "mandate_type": "payment",
                "direction": "granted", "agent_id": granted.agent_id, "credential_hash": credentials.digest(chain),
                "claims": closed, "status": "signed", "fulfills": granted.id,
                "expires_at": datetime.fromtimestamp(closed["exp"], UTC)})
            await _checked(tx, granted.id, amount, True)
            await onto.mandate_event(tx, "created", "closed", mandateId=str(closed_id), fulfills=str(granted.id),
                                     payee=payee["id"], amountMinor=amount["amount"], currency=amount["currency"])
    except MandateRefused as refused:
        async with ctx.transaction() as tx:
            await _checked(tx, payload.mandate_id, amount, False, reason=refused.details.get("reason"))
        raise
    return ClosedMandate(id=closed_id, mandate=chain, closed=closed)


async def _check_reference(tx: WorkContext, granted: Any, checkout_hash: str) -> None:
    """Refuse locally what the merchant would: a payment whose `payment.reference` does not name the open checkout
    mandate under which this agent checked this checkout out (or names one of the org's that did not)."""
    named = constraints.reference(granted.claims)
    closers, ours = await repo.checkout_mandates_for(tx.session, tx.auth.org_id, granted.agent_id, checkout_hash,
                                                     named)
    checked_out_by = (named if named in closers else closers[0]) if closers else None
    constraints.check_reference(granted.claims, checked_out_by, ours)


async def _checked(ctx: WorkContext, mandate_id: Any, amount: dict[str, Any], within: bool, **extra: Any) -> None:
    await ctx.emit(EventType.PRICE_EVENT, metadata={
        "protocol": "ap2", "action": "checked", "mandateId": str(mandate_id), "currentPrice": amount["amount"],
        "currency": amount["currency"], "withinBudget": within, **extra})


async def _close_checkout(tx: WorkContext, granted: Any, payload: MandateClose, payee: dict[str, Any],
                          amount: dict[str, Any], now: int) -> ClosedMandate:
    """A closed checkout mandate: exactly this merchant-signed checkout, if the open one allows its contents."""
    checkout = credentials.unverified_claims(payload.checkout_jwt)
    check_checkout(granted.claims, checkout)
    closed = {"vct": CHECKOUT_VCT, "checkout_jwt": payload.checkout_jwt,
              "checkout_hash": credentials.digest(payload.checkout_jwt), "iat": now,
              "exp": now + tx.runtime.settings.commerce_ap2_closed_ttl}
    if problems := schemas.errors(schemas.CHECKOUT, closed):
        raise InvalidRequest("the checkout makes no valid checkout mandate", {"errors": problems[:5]})
    _, agent_key = await signing_key(tx, "agent", granted.agent_id)
    chain = credentials.close(granted.credential, agent_key, closed, payee["id"], payload.nonce, iat=now)
    closed_id = await repo.insert_mandate(tx.session, {
        "id": uuid7(), "org_id": tx.auth.org_id, "kind": "closed", "mandate_type": "checkout", "direction": "granted",
        "agent_id": granted.agent_id, "credential_hash": credentials.digest(chain), "claims": closed,
        "status": "signed", "fulfills": granted.id, "expires_at": datetime.fromtimestamp(closed["exp"], UTC)})
    await onto.mandate_event(tx, "created", "closed", "checkout", mandateId=str(closed_id),
                             fulfills=str(granted.id), payee=payee["id"], amountMinor=amount["amount"])
    return ClosedMandate(id=closed_id, mandate=chain, closed=closed)


async def release(ctx: WorkContext, payload: MandateRelease) -> ReleasedMandate:
    """The merchant refused this closed mandate: its use of the open mandate is given back, once."""
    require(ctx.auth, "mandates", "sign")
    org_id = ctx.auth.org_id
    async with ctx.transaction() as tx:
        closed = await repo.get_closed_granted(tx.session, org_id, payload.mandate_id)
        if closed is None:
            raise NotFound("no such closed mandate signed by this org", {"mandate_id": str(payload.mandate_id)})
        _holding(ctx, closed.agent_id, "released")
        await repo.get_granted(tx.session, org_id, closed.fulfills)  # its purchases and releases queue here
        if not await repo.release_closed(tx.session, org_id, closed.id):
            raise Conflict("this closed mandate's use was released already", {"mandate_id": str(closed.id),
                                                                               "status": closed.status})
        amount = closed.claims.get("payment_amount") or {}
        await onto.mandate_event(tx, "released", "closed", closed.mandate_type, mandateId=str(closed.id),
                                 fulfills=str(closed.fulfills), reason=payload.reason,
                                 amountMinor=amount.get("amount"), currency=amount.get("currency"))
    return ReleasedMandate(id=closed.id, fulfills=closed.fulfills, status="released")
