"""AP2 v2 chains built the way a credential provider and a shopping agent would, straight with `sd-jwt` and
`jwcrypto` (not commerce's own code): the root SD-JWT carries the open mandate with the agent's `cnf`, the
KB-SD-JWT hop (`kb+sd-jwt`, `aud`, `nonce`, `sd_hash`) carries the closed one; hops are joined by `~~`.
"""

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


def open_mandate(issuer: JWK, agent: JWK, constraints: list[dict[str, Any]], *, exp: int | None = None,
                 **fields: Any) -> str:
    """The root SD-JWT: the open payment mandate, signed by the credential provider, bound to `agent`."""
    now = int(time.time())
    rules = [*constraints, {"type": "payment.reference", "conditional_transaction_id": "test-checkout-mandate"}]
    mandate = {"vct": "mandate.payment.open.1", "constraints": rules, "cnf": {"jwk": public(agent)}, "iat": now,
               "exp": now + 3600 if exp is None else exp, **fields}
    return _issue({"iss": "https://cp.test", "delegate_payload": [SDObj(mandate)]}, issuer, "dc+sd-jwt")


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
              "nonce": purchase.nonce, "sd_hash": b64hash(root), **changes}
    return root + "~" + _issue(claims, signer, "kb+sd-jwt")
