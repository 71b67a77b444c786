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

from services.commerce import keys, repository_ap2 as repo, repository_ap2_payments as pay
from services.commerce.ap2 import credentials, schemas
from services.commerce.ap2_replica import replica
from services.commerce.repository_ap2 import CheckoutRow, KeyRow, ReceiptRow
from shared.contracts.commerce.ap2 import (
    Ap2Checkout,
    CheckoutCreate,
    Jwks,
    JwksGet,
    MandateList,
    Mandates,
    MandateSummary,
    Receipt,
    ReceiptGet,
    ReceiptList,
    Receipts,
    TrustAdd,
    TrustedIssuer,
    TrustedIssuers,
)
from shared.kernel.errors import Conflict, InvalidRequest, NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

PUBLISHED_ROLES = ("merchant", "issuer")


def merchant_id(org_id: UUID) -> str:
    return str(org_id)


async def signing_key(ctx: WorkContext, role: str, owner_id: UUID) -> tuple[KeyRow, JWK]:
    """The org's key for `role` (made and sealed on first use), opened."""
    org_id = ctx.auth.org_id
    kept = replica(ctx.runtime).keys
    if (org_id, role, owner_id) in kept:
        return kept[(org_id, role, owner_id)]
    row = await repo.get_key(ctx.session, org_id, role, owner_id)
    stored = row is not None  # a key made now is kept only once read back committed
    if row is None:
        key = credentials.new_key(f"{role}-{uuid7().hex}")
        sealed = await keys.seal(ctx.runtime, keys.AP2_KEY, org_id, credentials.private_bytes(key))
        row = await repo.insert_key(ctx.session, org_id, role, owner_id, key["kid"], credentials.public_jwk(key),
                                    sealed) or await repo.get_key(ctx.session, org_id, role, owner_id)
    try:
        private = await keys.open_sealed(ctx.runtime, keys.AP2_KEY, org_id, row.key_sealed)
        opened = row, credentials.key_from_private(private)
    except (ValueError, LookupError):
        raise Conflict("the org's AP2 key cannot be opened (was the commerce wallet secret or key file changed?)"
                       ) from None
    if stored:
        kept[(org_id, role, owner_id)] = opened
    return opened


async def trusted_keys(ctx: WorkContext, *, fresh: bool = False) -> list[tuple[dict[str, Any], JWK]]:
    """The org's trusted credential-provider keys, parsed (kept in memory a while unless `fresh`)."""
    state = replica(ctx.runtime)
    kept = None if fresh else state.trusted_keys(ctx.auth.org_id)
    if kept is None:
        rows = await repo.trusted(ctx.session, ctx.auth.org_id)
        kept = state.keep_trusted(ctx.auth.org_id, [key for _, _, jwks_, _ in rows for key in jwks_["keys"]])
    return kept


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
    replica(ctx.runtime).trusted.pop(ctx.auth.org_id, None)
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
                       status=row.status, expires_at=row.expires_at, acp_session_id=row.acp_session_id)


async def create_checkout(ctx: WorkContext, payload: CheckoutCreate) -> Ap2Checkout:
    """A checkout signed with the merchant key; a closed mandate pays it by its hash and its nonce."""
    require(ctx.auth, "mandates", "checkout")
    for item in payload.items:
        if problems := schemas.errors("types/item.json", item):
            raise InvalidRequest("a line item is not an AP2 item (id, title, price)", {"errors": problems[:5]})
    return await sign_checkout(ctx, payload.amount, payload.currency, payload.items, payload.merchant_name,
                               payload.ttl_seconds)


async def sign_checkout(ctx: WorkContext, amount: int, currency: str, line_items: list[dict[str, Any]],
                        merchant_name: str, ttl_seconds: int, acp: tuple[str, int] | None = None) -> Ap2Checkout:
    """Sign and store a checkout (`acp`: the ACP checkout session and version it is signed for), and log it."""
    org_id, now = ctx.auth.org_id, int(time.time())
    _, key = await signing_key(ctx, "merchant", org_id)
    checkout_id, merchant = uuid7(), merchant_id(org_id)
    claims = {"iss": merchant, "iat": now, "exp": now + ttl_seconds, "jti": str(checkout_id),
              "merchant": {"id": merchant, "name": merchant_name}, "line_items": line_items,
              "total": {"amount": amount, "currency": currency}}
    if acp is not None:
        claims["acp_checkout_session_id"] = acp[0]
    token = credentials.sign_jwt(key, claims, credentials.CHECKOUT_TYP)
    values = {"id": checkout_id, "org_id": org_id, "merchant_id": merchant, "checkout_jwt": token,
              "checkout_hash": credentials.digest(token), "nonce": secrets.token_urlsafe(24),
              "amount": amount, "currency": currency, "expires_at": datetime.fromtimestamp(now + ttl_seconds, UTC),
              "acp_session_id": acp[0] if acp else None, "acp_version": acp[1] if acp else None}
    await repo.insert_checkout(ctx.session, values)
    await ctx.emit(EventType.COMMERCE_EVENT, metadata={"protocol": "ap2", "eventType": "purchase_initiated",
                                               "checkoutId": str(checkout_id), "amountMinor": amount,
                                               "currency": currency, **({"acpCheckoutSessionId": acp[0]}
                                                                        if acp else {})})
    return _checkout(CheckoutRow(**{k: v for k, v in values.items() if k != "org_id"}, status="open"))


def receipt_of(row: ReceiptRow) -> Receipt:
    return Receipt(id=row.id, checkout_id=row.checkout_id, mandate_id=row.mandate_id, receipt_jwt=row.receipt_jwt,
                   receipt=row.receipt, created_at=row.created_at, kind=row.kind, charge_id=row.charge_id)


async def get_receipt(ctx: WorkContext, payload: ReceiptGet) -> Receipt:
    require(ctx.auth, "mandates", "read")
    row = await repo.get_receipt(ctx.session, ctx.auth.org_id, payload.id)
    if row is None:
        raise NotFound("no such AP2 receipt", {"id": str(payload.id)})
    return receipt_of(row)


async def list_mandates(ctx: WorkContext, payload: MandateList) -> Mandates:
    """The org's mandates, newest first: granted to its agents, or accepted as a merchant (claims, no credential)."""
    require(ctx.auth, "mandates", "read")
    rows = await pay.mandates(ctx.session, ctx.auth.org_id, direction=payload.direction, agent_id=payload.agent_id,
                              limit=payload.limit, before=payload.before)
    return Mandates(items=[MandateSummary(**row) for row in rows])


async def list_receipts(ctx: WorkContext, payload: ReceiptList) -> Receipts:
    require(ctx.auth, "mandates", "read")
    rows = await pay.receipts(ctx.session, ctx.auth.org_id, limit=payload.limit, before=payload.before)
    return Receipts(items=[receipt_of(row) for row in rows])
