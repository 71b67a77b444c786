"""The merchant's verifier of a presented mandate chain: every check that needs no database.

A chain is the root SD-JWT (the open mandate the credential provider signed), zero or more delegation
hops (`kb+sd-jwt+kb`: an agent handing a narrower open mandate to a sub-agent's key), and the closed
mandate (`kb+sd-jwt`). In order, each failure a `MandateRefused` naming it (`details.reason`, and
`details.hop` — 0 the root, 1.. the hops after it — for what concerns one hop): the chain parses
(`malformed`); the root is signed by a key of the merchant's trust list, found by `kid`
(`untrusted_issuer`); each open mandate is one of the expected kind (`invalid_mandate`), unexpired
(`expired`) and, after the root, no wider than the one before (`widened`, narrowing.py); each hop is
signed by the previous mandate's `cnf.jwk` and its `sd_hash` binds it to the previous token
(`key_binding`); the closed mandate is valid (`invalid_mandate`), for this merchant (`aud`) with the
checkout's nonce (`nonce`), recent and unexpired (`expired`), for exactly this checkout
(`checkout_hash`) — and, for a payment, this payee (`payee`) and amount (`payment_amount`). The service
then checks what needs Postgres: the nonce unused, the constraints against each open mandate's uses.
"""

from dataclasses import dataclass
from typing import Any

from jwcrypto.jwk import JWK

from services.commerce.ap2 import credentials, schemas
from services.commerce.ap2.constraints import refuse
from services.commerce.ap2.narrowing import narrows

OPEN_PAYMENT_VCT = "mandate.payment.open.1"
PAYMENT_VCT = "mandate.payment.1"
OPEN_CHECKOUT_VCT = "mandate.checkout.open.1"
CHECKOUT_VCT = "mandate.checkout.1"
MAX_HOPS = 8


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    open_schema: str
    open_vct: str
    closed_schema: str
    closed_vct: str


PAYMENT = Kind("payment", schemas.OPEN_PAYMENT, OPEN_PAYMENT_VCT, schemas.PAYMENT, PAYMENT_VCT)
CHECKOUT = Kind("checkout", schemas.OPEN_CHECKOUT, OPEN_CHECKOUT_VCT, schemas.CHECKOUT, CHECKOUT_VCT)


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
class OpenMandate:
    mandate: dict[str, Any]
    hash: str  # digest of its token (disclosures included): the open mandate's identity across purchases


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    issuer: str
    issuer_kid: str
    opens: tuple[OpenMandate, ...]  # root first; the last is the one the closed mandate fulfills
    closed_mandate: dict[str, Any]
    closed_hash: str  # digest of the whole chain: what the receipt references

    @property
    def open_mandate(self) -> dict[str, Any]:
        return self.opens[-1].mandate

    @property
    def open_hash(self) -> str:
        return self.opens[-1].hash

    @property
    def open_exp(self) -> int | None:
        return self.open_mandate.get("exp")


Trusted = list[tuple[dict[str, Any], JWK]]


def _root_key(root: credentials.Token, trusted: Trusted) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the trusted key, the root's verified claims)."""
    kid = root.header.get("kid")
    for jwk, key in trusted:
        if kid is None or jwk.get("kid") == kid:
            try:
                return jwk, credentials.verified_claims(root, key)
            except ValueError:
                continue
    raise refuse("untrusted_issuer", "no trusted credential provider's key signed this mandate", kid=kid, hop=0)


def _mandate(claims: dict[str, Any], schema: str, vct: str, hop: int) -> dict[str, Any]:
    try:
        mandate = credentials.mandate_in(claims)
    except ValueError as exc:
        raise refuse("invalid_mandate", str(exc), hop=hop) from None
    if mandate.get("vct") == vct and schemas.valid(schema, mandate):
        return mandate
    problems = schemas.errors(schema, mandate)
    if problems or mandate.get("vct") != vct:
        raise refuse("invalid_mandate", f"not a valid {vct} mandate", hop=hop,
                     errors=problems[:5] or [f"vct is not {vct}"])
    return mandate


def _fresh(claims: dict[str, Any], expected: Expected, what: str, hop: int) -> None:
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int) or exp + expected.skew < expected.now):
        raise refuse("expired", f"the {what} has expired", exp=exp, hop=hop)


def _bound(hop: credentials.Token, previous: credentials.Token, holder_mandate: dict[str, Any], typ: str,
           index: int) -> dict[str, Any]:
    """The hop's claims, if the previous mandate's holder signed it over the previous token."""
    try:
        if hop.header.get("typ") != typ:
            raise ValueError(f"its typ is not {typ}")
        holder = credentials.key_of((holder_mandate.get("cnf") or {}).get("jwk"))
        claims = credentials.verified_claims(hop, holder)
        if claims.get("sd_hash") != credentials.digest(previous.sd_jwt):
            raise ValueError("its sd_hash does not bind it to the mandate before it")
    except ValueError as exc:
        raise refuse("key_binding", f"hop {index} is not bound to the mandate before it: {exc}", hop=index) from None
    return claims


def _closed_payment(closed: dict[str, Any], expected: Expected, hop: int) -> None:
    if closed["transaction_id"] != expected.checkout_hash:
        raise refuse("checkout_hash", "the mandate is for another checkout", hop=hop)
    if closed["payee"]["id"] != expected.merchant_id:
        raise refuse("payee", "the mandate pays another payee than this merchant", payee=closed["payee"]["id"])
    if closed["payment_amount"] != {"amount": expected.amount, "currency": expected.currency}:
        raise refuse("payment_amount", "the mandate pays another amount than this checkout's",
                     amount=closed["payment_amount"])


def _closed_checkout(closed: dict[str, Any], expected: Expected, hop: int) -> None:
    if closed["checkout_hash"] != expected.checkout_hash or \
            credentials.digest(closed["checkout_jwt"]) != expected.checkout_hash:
        raise refuse("checkout_hash", "the mandate is for another checkout", hop=hop)


def verify_chain(text: str, trusted: Trusted, expected: Expected, kind: Kind = PAYMENT) -> VerifiedChain:
    try:
        tokens = credentials.parse_chain(text)
    except ValueError as exc:
        raise refuse("malformed", f"not a mandate chain: {exc}") from None
    if not 2 <= len(tokens) <= MAX_HOPS:
        raise refuse("malformed", f"a chain is the open mandate, up to {MAX_HOPS - 2} delegations, and the closed "
                     "mandate", hops=len(tokens))
    root = tokens[0]
    jwk, root_claims = _root_key(root, trusted)
    mandate = _mandate(root_claims, kind.open_schema, kind.open_vct, 0)
    _fresh(mandate, expected, "open mandate", 0)
    opens = [OpenMandate(mandate, credentials.digest(root.sd_jwt))]
    for index in range(1, len(tokens) - 1):
        claims = _bound(tokens[index], tokens[index - 1], mandate, credentials.DELEGATION_TYP, index)
        child = _mandate(claims, kind.open_schema, kind.open_vct, index)
        _fresh(child, expected, "delegated mandate", index)
        narrows(mandate, child, index)
        mandate = child
        opens.append(OpenMandate(mandate, credentials.digest(tokens[index].sd_jwt)))
    last = len(tokens) - 1
    claims = _bound(tokens[last], tokens[last - 1], mandate, credentials.HOP_TYP, last)
    closed = _mandate(claims, kind.closed_schema, kind.closed_vct, last)
    if claims.get("aud") != expected.merchant_id:
        raise refuse("aud", "the mandate is for another merchant", aud=claims.get("aud"), hop=last)
    if claims.get("nonce") != expected.nonce:
        raise refuse("nonce", "the mandate does not carry this checkout's nonce", hop=last)
    iat = claims.get("iat")
    if not isinstance(iat, int) or iat > expected.now + expected.skew or iat < expected.now - expected.max_age:
        raise refuse("expired", "the closed mandate was not signed just now", iat=iat, hop=last)
    _fresh(closed, expected, "closed mandate", last)
    (_closed_payment if kind is PAYMENT else _closed_checkout)(closed, expected, last)
    return VerifiedChain(issuer=str(root_claims.get("iss") or ""), issuer_kid=str(jwk.get("kid") or ""),
                         opens=tuple(opens), closed_mandate=closed, closed_hash=credentials.digest(text))
