"""AP2 v2 chains built the way a credential provider and a shopping agent would, straight with `sd-jwt` and
`jwcrypto` (not commerce's own code): the root SD-JWT carries the open mandate with the agent's `cnf`, the
KB-SD-JWT hop (`kb+sd-jwt`, `aud`, `nonce`, `sd_hash`) carries the closed one; hops are joined by `~~`.
"""

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer

INSTRUMENT = {"id": "card-1", "type": "card", "description": "Test card"}


def b64hash(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def key(kid: str) -> JWK:
    return JWK.generate(kty="EC", crv="P-256", kid=kid)


def public(jwk: JWK) -> dict[str, Any]:
    return {**jwk.export_public(as_dict=True), "alg": "ES256", "use": "sig"}


def jwks(*keys: JWK) -> dict[str, Any]:
    return {"keys": [public(k) for k in keys]}


def _issue(claims: dict[str, Any], signer: JWK, typ: str) -> str:
    return SDJWTIssuer(claims, signer, sign_alg="ES256",
                       extra_header_parameters={"typ": typ, "kid": signer["kid"]}).sd_jwt_issuance


REFERENCE = {"type": "payment.reference", "conditional_transaction_id": "test-checkout-mandate"}


def open_payment(agent: JWK, constraints: list[dict[str, Any]], *, exp: int | None = None,
                 reference: str | None = None, **fields: Any) -> dict[str, Any]:
    """`reference`: the open checkout mandate it pays for (`checkout_reference(root)`), else one no merchant knows."""
    now = int(time.time())
    rule = {**REFERENCE, "conditional_transaction_id": reference} if reference else REFERENCE
    return {"vct": "mandate.payment.open.1", "constraints": [*constraints, rule], "cnf": {"jwk": public(agent)},
            "iat": now, "exp": now + 3600 if exp is None else exp, **fields}


def checkout_reference(root: str) -> str:
    """An open checkout mandate's digest, as a payment mandate's `payment.reference` names it (the official SDK's
    `sd_hash` of the presentation: issuer JWT and disclosures)."""
    return b64hash(last_token(root))


def open_mandate(issuer: JWK, agent: JWK, constraints: list[dict[str, Any]], *, exp: int | None = None,
                 reference: str | None = None, **fields: Any) -> str:
    """The root SD-JWT: the open payment mandate, signed by the credential provider, bound to `agent`."""
    mandate = open_payment(agent, constraints, exp=exp, reference=reference, **fields)
    return _issue({"iss": "https://cp.test", "delegate_payload": [SDObj(mandate)]}, issuer, "dc+sd-jwt")


def open_checkout_mandate(issuer: JWK, agent: JWK, constraints: list[dict[str, Any]]) -> str:
    """The root SD-JWT of an open checkout mandate (checkout.line_items, checkout.allowed_merchants)."""
    now = int(time.time())
    mandate = {"vct": "mandate.checkout.open.1", "constraints": constraints, "cnf": {"jwk": public(agent)},
               "iat": now, "exp": now + 3600}
    return _issue({"iss": "https://cp.test", "delegate_payload": [SDObj(mandate)]}, issuer, "dc+sd-jwt")


def last_token(chain: str) -> str:
    """The last hop of a chain, as the next hop's `sd_hash` covers it."""
    return chain.rstrip("~").split("~~")[-1] + "~"


def delegate(chain: str, holder: JWK, mandate: dict[str, Any], signer: JWK | None = None,
             sd_hash: str | None = None) -> str:
    """chain ~ an intermediate hop (`kb+sd-jwt+kb`): `holder` (the last mandate's cnf) hands `mandate` (an open one
    naming the sub-agent's `cnf`) on; `signer` / `sd_hash` break it on purpose."""
    claims = {"delegate_payload": [SDObj(mandate)], "iat": int(time.time()), "aud": "https://sub-agent.test",
              "nonce": "delegation", "sd_hash": sd_hash or b64hash(last_token(chain))}
    return chain + "~" + _issue(claims, signer or holder, "kb+sd-jwt+kb")


@dataclass
class Purchase:
    """What the merchant's checkout says: the closed mandate must match it."""

    merchant_id: str
    checkout_hash: str
    nonce: str
    amount: int
    currency: str = "USD"
    id: Any = None  # the merchant's checkout id


def close(root: str, agent: JWK, purchase: Purchase, **changes: Any) -> str:
    """root ~ the KB-SD-JWT the agent signs for this purchase (`changes` alter its claims or its mandate)."""
    signer, mandate_changes = changes.pop("signer", agent), changes.pop("mandate", {})
    mandate = {"vct": "mandate.payment.1", "transaction_id": purchase.checkout_hash,
               "payee": {"id": purchase.merchant_id, "name": "Merchant"},
               "payment_amount": {"amount": purchase.amount, "currency": purchase.currency},
               "payment_instrument": INSTRUMENT, "iat": int(time.time())}
    mandate.update(mandate_changes)
    claims = {"delegate_payload": [SDObj(mandate)], "iat": int(time.time()), "aud": purchase.merchant_id,
              "nonce": purchase.nonce, "sd_hash": b64hash(last_token(root)), **changes}
    return root + "~" + _issue(claims, signer, "kb+sd-jwt")


def close_checkout(root: str, agent: JWK, purchase: "Purchase", checkout_jwt: str) -> str:
    """root ~ the closed checkout mandate for exactly this merchant-signed checkout."""
    mandate = {"vct": "mandate.checkout.1", "checkout_jwt": checkout_jwt, "checkout_hash": b64hash(checkout_jwt),
               "iat": int(time.time())}
    claims = {"delegate_payload": [SDObj(mandate)], "iat": int(time.time()), "aud": purchase.merchant_id,
              "nonce": purchase.nonce, "sd_hash": b64hash(last_token(root))}
    return root + "~" + _issue(claims, agent, "kb+sd-jwt")


async def graph_synced(admin: Any, org_id: Any, timeout: float = 60.0) -> None:
    """Wait until commerce wrote the org's mandate things and connections (after the reply, ap2_replica.GraphSync)."""
    deadline = time.monotonic() + timeout
    while await admin.fetchval("SELECT count(*) FROM commerce.ap2_mandates WHERE org_id = $1 AND graph_pending",
                               org_id):
        assert time.monotonic() < deadline, "the AP2 graph sync did not catch up"
        await asyncio.sleep(0.1)
