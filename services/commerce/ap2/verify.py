"""The merchant's verifier of a presented payment mandate chain: every check that needs no database.

In order, each failure a `MandateRefused` naming it (`details.reason`): the chain parses (`malformed`);
the root is signed by a key of the merchant's trust list, found by `kid` (`untrusted_issuer`); the open
mandate is an open payment mandate (`invalid_mandate`) still valid (`expired`); the next and last hop is
a `kb+sd-jwt` signed by the open mandate's `cnf.jwk` whose `sd_hash` is the root's (`key_binding`); the
closed mandate is a payment mandate (`invalid_mandate`) for this merchant (`aud`) with the checkout's
nonce (`nonce`), recent and unexpired (`expired`), for exactly this checkout (`checkout_hash`), this payee (`payee`)
and its amount (`payment_amount`). The service then checks what needs Postgres: the nonce unused, the
constraints against the mandate's uses (constraints.py).
"""

from dataclasses import dataclass
from typing import Any

from services.commerce.ap2 import credentials, schemas
from services.commerce.ap2.constraints import refuse

OPEN_PAYMENT_VCT = "mandate.payment.open.1"
PAYMENT_VCT = "mandate.payment.1"


@dataclass(frozen=True, slots=True)
class Expected:
    """What this purchase must be: the merchant (`aud`, payee), its checkout and the nonce it handed out."""

    merchant_id: str
    nonce: str
    checkout_hash: str
    amount: int
    currency: str
    now: float
    max_age: float = 600.0
    skew: float = 60.0


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    issuer: str
    issuer_kid: str
    open_mandate: dict[str, Any]
    closed_mandate: dict[str, Any]
    open_hash: str  # digest of the root SD-JWT: the open mandate's identity across purchases
    closed_hash: str  # digest of the whole chain: what the receipt references
    open_exp: int | None


def _root_key(root: credentials.Token, trusted: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the trusted key, the root's verified claims)."""
    kid = root.header.get("kid")
    for jwk in trusted:
        if kid is None or jwk.get("kid") == kid:
            try:
                return jwk, credentials.verified_claims(root, credentials.key_of(jwk))
            except ValueError:
                continue
    raise refuse("untrusted_issuer", "no trusted credential provider's key signed this mandate", kid=kid)


def _mandate(claims: dict[str, Any], schema: str, vct: str) -> dict[str, Any]:
    try:
        mandate = credentials.mandate_in(claims)
    except ValueError as exc:
        raise refuse("invalid_mandate", str(exc)) from None
    problems = schemas.errors(schema, mandate)
    if problems or mandate.get("vct") != vct:
        raise refuse("invalid_mandate", f"not a valid {vct} mandate", errors=problems[:5] or [f"vct is not {vct}"])
    return mandate


def _fresh(claims: dict[str, Any], expected: Expected, what: str) -> None:
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int) or exp + expected.skew < expected.now):
        raise refuse("expired", f"the {what} has expired", exp=exp)


def verify_chain(text: str, trusted: list[dict[str, Any]], expected: Expected) -> VerifiedChain:
    try:
        tokens = credentials.parse_chain(text)
    except ValueError as exc:
        raise refuse("malformed", f"not a mandate chain: {exc}") from None
    if len(tokens) != 2:
        raise refuse("malformed", "a payment presents two hops: the open mandate and the closed one",
                      hops=len(tokens))
    root, hop = tokens
    jwk, root_claims = _root_key(root, trusted)
    open_mandate = _mandate(root_claims, schemas.OPEN_PAYMENT, OPEN_PAYMENT_VCT)
    _fresh(open_mandate, expected, "open mandate")
    try:
        if hop.header.get("typ") != credentials.HOP_TYP:
            raise ValueError(f"the closed mandate's typ is not {credentials.HOP_TYP}")
        holder = credentials.key_of((open_mandate["cnf"] or {}).get("jwk"))
        claims = credentials.verified_claims(hop, holder)
        if claims.get("sd_hash") != credentials.digest(root.sd_jwt):
            raise ValueError("its sd_hash does not bind it to the open mandate")
    except ValueError as exc:
        raise refuse("key_binding", f"the closed mandate is not bound to the open one: {exc}") from None
    closed = _mandate(claims, schemas.PAYMENT, PAYMENT_VCT)
    if claims.get("aud") != expected.merchant_id:
        raise refuse("aud", "the mandate is for another merchant", aud=claims.get("aud"))
    if claims.get("nonce") != expected.nonce:
        raise refuse("nonce", "the mandate does not carry this checkout's nonce")
    iat = claims.get("iat")
    if not isinstance(iat, int) or iat > expected.now + expected.skew or iat < expected.now - expected.max_age:
        raise refuse("expired", "the closed mandate was not signed just now", iat=iat)
    _fresh(closed, expected, "closed mandate")
    if closed["transaction_id"] != expected.checkout_hash:
        raise refuse("checkout_hash", "the mandate is for another checkout")
    if closed["payee"]["id"] != expected.merchant_id:
        raise refuse("payee", "the mandate pays another payee than this merchant", payee=closed["payee"]["id"])
    if closed["payment_amount"] != {"amount": expected.amount, "currency": expected.currency}:
        raise refuse("payment_amount", "the mandate pays another amount than this checkout's",
                     amount=closed["payment_amount"])
    return VerifiedChain(issuer=str(root_claims.get("iss") or ""), issuer_kid=str(jwk.get("kid") or ""),
                         open_mandate=open_mandate, closed_mandate=closed, open_hash=credentials.digest(root.sd_jwt),
                         closed_hash=credentials.digest(text), open_exp=open_mandate.get("exp"))
