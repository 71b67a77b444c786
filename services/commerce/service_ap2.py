"""AP2 v2, the merchant's side: its keys, its trust list, checkout JWTs, and a presented mandate turned into a receipt.

The merchant is the org; its id (`merchant_id`, the org id as text) is the `aud` a closed mandate names,
the payee's `id`, and the `iss` of what it signs. Its public keys are published at the gateway's
`/v1/ap2/{org id}/jwks.json`. A presentation is one transaction (repository_ap2.py says how concurrent
ones are kept apart); a refused one rolls back and is then logged in its own (`mandate_event`
`rejected` with the reason), and the `MandateRefused` goes back to the presenter.
"""

import secrets
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from jwcrypto.jwk import JWK

from services.commerce import ap2_ontology as onto, repository_ap2 as repo, wallet
from services.commerce.ap2 import constraints, credentials, schemas
from services.commerce.ap2.verify import Expected, VerifiedChain, verify_chain
from services.commerce.repository_ap2 import CheckoutRow, KeyRow, ReceiptRow
from shared.contracts.commerce.ap2 import (
    Ap2Checkout,
    CheckoutCreate,
    Jwks,
    JwksGet,
    MandatePresent,
    MandateRefused,
    Receipt,
    ReceiptGet,
    TrustAdd,
    TrustedIssuer,
    TrustedIssuers,
)
from shared.kernel import sealing
from shared.kernel.errors import Conflict, InvalidRequest, NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_PURPOSE = b"one.commerce.ap2-key"
PUBLISHED_ROLES = ("merchant", "issuer")


def merchant_id(org_id: UUID) -> str:
    return str(org_id)


async def signing_key(ctx: WorkContext, role: str, owner_id: UUID) -> tuple[KeyRow, JWK]:
    """The org's key for `role` (made and sealed on first use), opened."""
    org_id, secret = ctx.auth.org_id, wallet.wallet_secret(ctx.runtime.settings)
    row = await repo.get_key(ctx.session, org_id, role, owner_id)
    if row is None:
        key = credentials.new_key(f"{role}-{uuid7().hex}")
        sealed = sealing.seal(secret, credentials.private_bytes(key), org_id.bytes, _PURPOSE)
        row = await repo.insert_key(ctx.session, org_id, role, owner_id, key["kid"], credentials.public_jwk(key),
                                    sealed) or await repo.get_key(ctx.session, org_id, role, owner_id)
    try:
        return row, credentials.key_from_private(sealing.unseal(secret, row.key_sealed, org_id.bytes, _PURPOSE))
    except ValueError:
        raise Conflict("the org's AP2 key cannot be opened (was the commerce wallet secret changed?)") from None


async def jwks(ctx: WorkContext, payload: JwksGet) -> Jwks:
    """The org's published keys; `create` makes them first, so a partner can trust them before any sale."""
    require(ctx.auth, "mandates", "keys")
    if payload.create:
        require(ctx.auth, "mandates", "update")
        await signing_key(ctx, "merchant", ctx.auth.org_id)
        await signing_key(ctx, "issuer", ctx.auth.org_id)
    return Jwks(keys=await repo.public_keys(ctx.session, ctx.auth.org_id, PUBLISHED_ROLES))


def _keys_of(jwks_: dict[str, Any]) -> list[dict[str, Any]]:
    keys = jwks_.get("keys") if isinstance(jwks_, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > 20:
        raise InvalidRequest("a JWKS is {\"keys\": [...]} with 1 to 20 keys")
    kept = []
    for jwk in keys:
        try:
            credentials.key_of(jwk)
        except ValueError as exc:
            raise InvalidRequest(f"a trusted key must be an EC P-256 public key: {exc}") from None
        if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            raise InvalidRequest("a trusted key needs its `kid` (the mandates it signs name it)")
        kept.append({name: jwk[name] for name in credentials.PUBLIC_FIELDS if name in jwk})
    return kept


async def trust_add(ctx: WorkContext, payload: TrustAdd) -> TrustedIssuer:
    """Accept mandates signed by this credential provider's keys from now on."""
    require(ctx.auth, "mandates", "update")
    keys = _keys_of(payload.jwks)
    values = {"id": uuid7(), "org_id": ctx.auth.org_id, "issuer": payload.issuer, "jwks": {"keys": keys},
              "created_by": ctx.auth.actor_id}
    created_at = await repo.insert_trusted(ctx.session, values)
    kids = [key["kid"] for key in keys]
    await ctx.emit(EventType.SETTINGS_UPDATED, metadata={"setting": "ap2.trust", "action": "added", "protocol": "ap2",
                                                 "issuer": payload.issuer, "kids": kids})
    return TrustedIssuer(id=values["id"], issuer=payload.issuer, kids=kids, created_at=created_at)


async def trust_list(ctx: WorkContext) -> TrustedIssuers:
    require(ctx.auth, "mandates", "read")
    rows = await repo.trusted(ctx.session, ctx.auth.org_id)
    return TrustedIssuers(items=[TrustedIssuer(id=id_, issuer=issuer, kids=[k["kid"] for k in jwks_["keys"]],
                                               created_at=at) for id_, issuer, jwks_, at in rows])


def _checkout(row: CheckoutRow) -> Ap2Checkout:
    return Ap2Checkout(id=row.id, merchant_id=row.merchant_id, checkout_jwt=row.checkout_jwt,
                       checkout_hash=row.checkout_hash, nonce=row.nonce, amount=row.amount, currency=row.currency,
                       status=row.status, expires_at=row.expires_at)


async def create_checkout(ctx: WorkContext, payload: CheckoutCreate) -> Ap2Checkout:
    """A checkout signed with the merchant key; a closed mandate pays it by its hash and its nonce."""
    require(ctx.auth, "mandates", "checkout")
    for item in payload.items:
        if problems := schemas.errors("types/item.json", item):
            raise InvalidRequest("a line item is not an AP2 item (id, title, price)", {"errors": problems[:5]})
    org_id, now = ctx.auth.org_id, int(time.time())
    _, key = await signing_key(ctx, "merchant", org_id)
    checkout_id, merchant = uuid7(), merchant_id(org_id)
    claims = {"iss": merchant, "iat": now, "exp": now + payload.ttl_seconds, "jti": str(checkout_id),
              "merchant": {"id": merchant, "name": payload.merchant_name}, "line_items": payload.items,
              "total": {"amount": payload.amount, "currency": payload.currency}}
    token = credentials.sign_jwt(key, claims, credentials.CHECKOUT_TYP)
    values = {"id": checkout_id, "org_id": org_id, "merchant_id": merchant, "checkout_jwt": token,
              "checkout_hash": credentials.digest(token), "nonce": secrets.token_urlsafe(24),
              "amount": payload.amount, "currency": payload.currency,
              "expires_at": datetime.fromtimestamp(now + payload.ttl_seconds, UTC)}
    await repo.insert_checkout(ctx.session, values)
    await ctx.emit(EventType.COMMERCE_EVENT, metadata={"protocol": "ap2", "eventType": "purchase_initiated",
                                               "checkoutId": str(checkout_id), "amountMinor": payload.amount,
                                               "currency": payload.currency})
    return _checkout(CheckoutRow(**{k: v for k, v in values.items() if k != "org_id"}, status="open"))


def _receipt(row: ReceiptRow) -> Receipt:
    return Receipt(id=row.id, checkout_id=row.checkout_id, mandate_id=row.mandate_id, receipt_jwt=row.receipt_jwt,
                   receipt=row.receipt, created_at=row.created_at)


async def _trusted_keys(ctx: WorkContext) -> list[dict[str, Any]]:
    return [key for _, _, jwks_, _ in await repo.trusted(ctx.session, ctx.auth.org_id) for key in jwks_["keys"]]


async def _accept(tx: WorkContext, payload: MandatePresent) -> tuple[ReceiptRow, VerifiedChain, UUID, UUID]:
    org_id, now = tx.auth.org_id, time.time()
    checkout = await repo.get_checkout(tx.session, org_id, payload.checkout_id, lock=True)
    if checkout is None:
        raise NotFound("no such AP2 checkout", {"checkout_id": str(payload.checkout_id)})
    if checkout.status == "paid":
        raise constraints.refuse("nonce_reused", "this checkout's nonce was used: it is paid")
    if checkout.expires_at.timestamp() < now:
        raise constraints.refuse("expired", "the checkout has expired")
    settings = tx.runtime.settings
    expected = Expected(checkout.merchant_id, checkout.nonce, checkout.checkout_hash, checkout.amount,
                        checkout.currency, now, settings.commerce_ap2_max_age, settings.commerce_ap2_clock_skew)
    chain = verify_chain(payload.mandate, await _trusted_keys(tx), expected)
    await repo.lock_open_mandate(tx.session, org_id, chain.open_hash)
    used = await repo.usage_of(tx.session, org_id, chain.open_hash)
    usage = constraints.Usage(used.uses, used.spent, used.last_used_at.timestamp() if used.last_used_at else None)
    constraints.check(chain.open_mandate, chain.closed_mandate, usage, now)
    open_id = await repo.insert_mandate(tx.session, {
        "id": uuid7(), "org_id": org_id, "kind": "open", "mandate_type": "payment", "direction": "accepted",
        "credential_hash": chain.open_hash, "claims": chain.open_mandate, "status": "active",
        "expires_at": datetime.fromtimestamp(chain.open_exp, UTC) if chain.open_exp else None})
    closed_id = await repo.insert_mandate(tx.session, {
        "id": uuid7(), "org_id": org_id, "kind": "closed", "mandate_type": "payment", "direction": "accepted",
        "credential_hash": chain.closed_hash, "claims": chain.closed_mandate, "status": "used", "fulfills": open_id})
    receipt_id = uuid7()
    claims = {"status": "Success", "iss": checkout.merchant_id, "iat": int(now), "reference": chain.closed_hash,
              "payment_id": str(receipt_id), "psp_confirmation_id": f"one-ap2:{receipt_id}",
              "network_confirmation_id": checkout.checkout_hash}
    if problems := schemas.errors(schemas.PAYMENT_RECEIPT, claims):  # our own output: a bug if it fails
        raise RuntimeError(f"the AP2 receipt breaks its schema: {problems}")
    _, key = await signing_key(tx, "merchant", org_id)
    row = await repo.insert_receipt(tx.session, {
        "id": receipt_id, "org_id": org_id, "checkout_id": checkout.id, "mandate_id": closed_id,
        "open_hash": chain.open_hash, "amount": checkout.amount, "currency": checkout.currency,
        "receipt_jwt": credentials.sign_jwt(key, claims, credentials.RECEIPT_TYP), "receipt": claims})
    await repo.mark_paid(tx.session, org_id, checkout.id)
    ids = {"checkoutId": str(checkout.id), "receiptId": str(receipt_id), "mandateId": str(closed_id),
           "openMandateId": str(open_id), "credentialHash": chain.closed_hash, "issuer": chain.issuer}
    await onto.mandate_event(tx, "presented", "closed", **ids)
    await onto.mandate_event(tx, "verified", "closed", **ids)
    await onto.payment_event(tx, checkout.amount, checkout.currency, **ids)
    return row, chain, open_id, closed_id


async def present(ctx: WorkContext, payload: MandatePresent) -> Receipt:
    """Verify the presented chain for this checkout; a signed receipt if it pays it, `MandateRefused` if not."""
    require(ctx.auth, "mandates", "present")
    try:
        async with ctx.transaction() as tx:
            row, chain, open_id, closed_id = await _accept(tx, payload)
    except MandateRefused as refused:
        async with ctx.transaction() as tx:
            await onto.mandate_event(tx, "presented", "closed", checkoutId=str(payload.checkout_id))
            await onto.mandate_event(tx, "rejected", "closed", checkoutId=str(payload.checkout_id),
                                     reason=refused.details.get("reason"), credentialHash=credentials.digest(
                                         payload.mandate) if payload.mandate.isascii() else None)
        raise
    open_thing = await onto.mandate_thing(ctx, f"AP2 open payment mandate {chain.open_hash[:12]}",
                                          onto.mandate_properties(open_id, "open", chain.open_mandate,
                                                                  chain.open_hash, "active", issuer=chain.issuer))
    closed_thing = await onto.mandate_thing(ctx, f"AP2 payment mandate for checkout {payload.checkout_id}",
                                            onto.mandate_properties(closed_id, "closed", chain.closed_mandate,
                                                                    chain.closed_hash, "used",
                                                                    checkoutId=str(payload.checkout_id)))
    await onto.fulfilled(ctx, closed_thing, open_thing, receiptId=str(row.id))
    return _receipt(row)


async def get_receipt(ctx: WorkContext, payload: ReceiptGet) -> Receipt:
    require(ctx.auth, "mandates", "read")
    row = await repo.get_receipt(ctx.session, ctx.auth.org_id, payload.id)
    if row is None:
        raise NotFound("no such AP2 receipt", {"id": str(payload.id)})
    return _receipt(row)
