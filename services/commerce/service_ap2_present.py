"""AP2 v2, the merchant accepting a presented mandate chain: a payment mandate pays a checkout, a checkout mandate
authorizes its contents; either way a signed receipt comes back, or a `MandateRefused` naming the reason.

A presentation is one transaction, and its reply waits for nothing else: the checkout is locked (two
presentations for one checkout queue; the second finds it paid), the chain verified (ap2/verify.py:
hop by hop, with the trust list kept in memory), then for a payment each open mandate of the chain
(the root and every delegation) is locked with its uses read in the same statement, its `payment.reference`
checked against the open checkout mandate that checked this checkout out, and its constraints checked;
the PSP charges the closed mandate's instrument (a decline: no receipt, `PaymentDeclined`, a
`payment_event` `failed`); the receipt is signed (the merchant key kept in memory) and everything — the
mandates, the receipt, the checkout paid, the uses counted, the events — is stored in one statement. The
`mandate` things and the `fulfilled` connection are written after the reply (ap2_replica.GraphSync). A payment
for a checkout signed for an ACP session also completes that session in the same transaction
(service_ap2_acp.py: its order, and its sale settled as AP2's after the reply).

A refusal is final: the chain is recorded as refused (and the refusal logged) in the same transaction, before
the checkout's lock is let go — so no presentation of the same chain, racing or later, is ever accepted
(`refused_before`), and the shopping agent may count its use as released. Nothing a refusal must undo is
written before it: the checks come first, then the PSP's charge, then the writes; what is written earlier is
an open mandate's row of uses, made with none on its first use (what no row means). Only a checkout signed for
an ACP session writes first (`check_session` locks the session and redeems its discount): its acceptance runs
in a savepoint, which a refusal rolls back.
"""

import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.commerce import ap2_ontology as onto, psp, repository_ap2_payments as pay
from services.commerce.ap2 import constraints, credentials
from services.commerce.ap2.narrowing import check_checkout
from services.commerce.ap2.verify import CHECKOUT, PAYMENT, Expected, VerifiedChain, verify_chain
from services.commerce.ap2_replica import replica
from services.commerce.models_checkout import SessionRow
from services.commerce.repository_ap2 import CheckoutRow, ReceiptRow
from services.commerce.service_ap2 import receipt_of, signing_key, trusted_keys
from services.commerce.service_ap2_acp import Sale, check_session, complete_session, settle_soon
from shared.contracts.commerce.ap2 import MandatePresent, MandateRefused, Receipt
from shared.contracts.commerce.payments import Charge, PaymentDeclined
from shared.kernel.errors import NotFound
from shared.kernel.ids import uuid7
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


@dataclass(slots=True)
class Accepted:
    row: ReceiptRow
    chain: VerifiedChain
    sale: Sale | None = None  # an ACP session this payment completed


async def _verified(tx: WorkContext, payload: MandatePresent, expected: Expected) -> VerifiedChain:
    kind = CHECKOUT if payload.kind == "checkout" else PAYMENT
    try:
        return verify_chain(payload.mandate, await trusted_keys(tx), expected, kind)
    except MandateRefused as refused:  # an issuer trusted since the list was kept: look again before refusing
        if refused.details.get("reason") != "untrusted_issuer":
            raise
        return verify_chain(payload.mandate, await trusted_keys(tx, fresh=True), expected, kind)


async def _pay(tx: WorkContext, checkout: CheckoutRow, checked_out_by: str | None, chain: VerifiedChain,
               now: float) -> Charge:
    """Each open mandate locked with its uses (root first), the payment's reference, each one's constraints against
    its uses, then the PSP's charge (which writes nothing when it declines: the test PSP writes nothing at all)."""
    org_id, closed = tx.auth.org_id, chain.closed_mandate
    named = constraints.reference(chain.open_mandate) if checked_out_by is None else None
    used = [await pay.use_open_mandate(tx.session, org_id, level.hash, named if level is chain.opens[-1] else None)
            for level in chain.opens]
    constraints.check_reference(chain.open_mandate, checked_out_by, used[-1][1])
    for level, (uses, _) in zip(chain.opens, used, strict=True):
        usage = constraints.Usage(uses.uses, uses.spent, uses.last_used_at.timestamp() if uses.last_used_at else None)
        constraints.check(level.mandate, closed, usage, now)
    provider = psp.provider(tx.runtime.settings)
    return await provider.charge_mandate(tx, instrument=closed["payment_instrument"], amount=checkout.amount,
                                         currency=checkout.currency, checkout_id=str(checkout.id),
                                         idempotency_key=f"ap2:{checkout.id}:{chain.closed_hash}")


def _receipt_claims(kind: str, checkout: CheckoutRow, chain: VerifiedChain, receipt_id: UUID, now: float,
                    charge: Charge | None) -> dict[str, Any]:
    claims: dict[str, Any] = {"status": "Success", "iss": checkout.merchant_id, "iat": int(now),
                              "reference": chain.closed_hash}
    if kind == "payment":
        assert charge is not None
        claims |= {"payment_id": str(receipt_id), "psp_confirmation_id": charge.id,
                   "network_confirmation_id": checkout.checkout_hash}
    else:
        claims["order_id"] = str(checkout.id)
    return claims


def _events(kind: str, checkout: CheckoutRow, charge: Charge | None, session: SessionRow | None,
            ids: dict[str, Any]) -> list[onto.Event]:
    """The accepted presentation's events; a payment's `payment_event` unless it completes an ACP session (then its
    settlement's counts the sale)."""
    events = [onto.mandate("presented", "closed", kind, **ids), onto.mandate("verified", "closed", kind, **ids)]
    if charge is not None and session is None:
        events.append(onto.payment(checkout.amount, checkout.currency, chargeId=charge.id, **ids))
    return events


async def _accept(tx: WorkContext, payload: MandatePresent, locked: tuple[CheckoutRow, str | None, bool]) -> Accepted:
    org_id, now, kind = tx.auth.org_id, time.time(), payload.kind
    checkout, checked_out_by, refused_before = locked
    if checkout.status == "paid":
        raise constraints.refuse("nonce_reused", "this checkout's nonce was used: it is paid")
    if kind == "checkout" and checkout.checked_out:
        raise constraints.refuse("checked_out", "a checkout mandate already authorized this checkout")
    if checkout.expires_at.timestamp() < now:
        raise constraints.refuse("expired", "the checkout has expired")
    if refused_before:
        raise constraints.refuse("refused_before", "this merchant refused this mandate chain before: a refusal is "
                                 "final")
    session = await check_session(tx, checkout, kind)
    settings = tx.runtime.settings
    expected = Expected(checkout.merchant_id, checkout.nonce, checkout.checkout_hash, checkout.amount,
                        checkout.currency, now, settings.commerce_ap2_max_age, settings.commerce_ap2_clock_skew)
    chain = await _verified(tx, payload, expected)
    charge = None
    if kind == "payment":
        charge = await _pay(tx, checkout, checked_out_by, chain, now)
    else:
        check_checkout(chain.open_mandate, credentials.unverified_claims(checkout.checkout_jwt))  # our own JWT
    receipt_id, open_id, closed_id = uuid7(), uuid7(), uuid7()
    claims = _receipt_claims(kind, checkout, chain, receipt_id, now, charge)
    _, key = await signing_key(tx, "merchant", org_id)
    ids = {"checkoutId": str(checkout.id), "receiptId": str(receipt_id), "mandateId": str(closed_id),
           "openMandateId": str(open_id), "credentialHash": chain.closed_hash, "issuer": chain.issuer,
           "hops": len(chain.opens)}
    common = {"org_id": org_id, "mandate_type": kind, "direction": "accepted", "graph_pending": True,
              "actor_id": tx.auth.actor_id, "issuer": chain.issuer}
    stored_open_id, row, staged = await pay.record_payment(tx.session, org_id, open_mandate={
        **common, "id": open_id, "kind": "open", "credential_hash": chain.open_hash, "claims": chain.open_mandate,
        "status": "active", "expires_at": datetime.fromtimestamp(chain.open_exp, UTC) if chain.open_exp else None,
    }, closed_mandate={
        **common, "id": closed_id, "kind": "closed", "credential_hash": chain.closed_hash,
        "claims": chain.closed_mandate, "status": "used",
    }, receipt={"id": receipt_id, "checkout_id": checkout.id, "open_hash": chain.open_hash, "kind": kind,
                "amount": checkout.amount, "currency": checkout.currency, "charge_id": charge.id if charge else None,
                "receipt_jwt": credentials.sign_jwt(key, claims, credentials.RECEIPT_TYP), "receipt": claims},
        open_hashes=[level.hash for level in chain.opens],
        events=onto.messages(tx, *_events(kind, checkout, charge, session, ids)))
    if not staged:  # a mandate accepted before kept its id: the events name that one
        ids |= {"mandateId": str(row.mandate_id), "openMandateId": str(stored_open_id)}
        await onto.emit(tx, *_events(kind, checkout, charge, session, ids))
    sale = None
    if charge is not None and session is not None:  # its settlement's payment_event (ap2) counts the sale
        sale = await complete_session(tx, session, charge, receipt_id, ids)
    return Accepted(row, chain, sale)


def _undoable(tx: WorkContext, checkout: CheckoutRow) -> AbstractAsyncContextManager[Any]:
    """A savepoint for the acceptance of a checkout signed for an ACP session (`check_session` writes before the
    chain is verified, so a refusal rolls it back); none for a plain one, which writes nothing a refusal undoes."""
    return tx.session.begin_nested() if checkout.acp_session_id is not None else nullcontext()


async def present(ctx: WorkContext, payload: MandatePresent) -> Receipt:
    """Verify the presented chain for this checkout; a signed receipt if it is accepted, `MandateRefused` if not."""
    require(ctx.auth, "mandates", "present")
    chain_hash = credentials.digest(payload.mandate) if payload.mandate.isascii() else None
    refusal: MandateRefused | PaymentDeclined | None = None
    async with ctx.transaction() as tx:
        locked = await pay.lock_checkout(tx.session, ctx.auth.org_id, payload.checkout_id, chain_hash)
        if locked is None:
            raise NotFound("no such AP2 checkout", {"checkout_id": str(payload.checkout_id)})
        try:
            async with _undoable(tx, locked[0]):
                accepted = await _accept(tx, payload, locked)
        except (MandateRefused, PaymentDeclined) as refused:
            refusal = refused
            await _refused(tx, payload, refused, locked[0], chain_hash)
    if refusal is not None:
        raise refusal
    replica(ctx.runtime).graph.poke()
    if accepted.sale is not None:
        settle_soon(ctx, accepted.sale)
    return receipt_of(accepted.row)


async def _refused(tx: WorkContext, payload: MandatePresent, refused: MandateRefused | PaymentDeclined,
                   checkout: CheckoutRow, chain_hash: str | None) -> None:
    """The chain refused for good (the checkout still locked), and the refusal logged."""
    reason = refused.details.get("reason")
    ids: dict[str, Any] = {"checkoutId": str(payload.checkout_id), "reason": reason, "credentialHash": chain_hash}
    if "hop" in refused.details:
        ids["hop"] = refused.details["hop"]
    if chain_hash is not None and reason != "refused_before":
        await pay.record_refused(tx.session, tx.auth.org_id, chain_hash, checkout.id, str(reason or refused.code))
    events = [onto.mandate("presented", "closed", payload.kind, checkoutId=ids["checkoutId"])]
    if isinstance(refused, PaymentDeclined):  # the mandate was good, the instrument was not
        events.append(onto.mandate("verified", "closed", payload.kind, **ids))
        events.append(onto.payment(checkout.amount, checkout.currency, status="failed",
                                   declineReason=refused.reason, **ids))
    else:
        events.append(onto.mandate("rejected", "closed", payload.kind, **ids))
    await onto.emit(tx, *events)

