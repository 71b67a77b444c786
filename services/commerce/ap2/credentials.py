"""AP2 v2 credentials: ES256 keys, SD-JWT mandates chained by key binding, and plain signed JWTs.

A chain is what AP2's SDK (`ap2.sdk.sdjwt.chain`) calls a dSD-JWT: the root SD-JWT, signed by the
credential provider (header `kid`), carries the open mandate (with the agent's key in `cnf.jwk`) as the
one selectively-disclosed item of `delegate_payload`; each next hop is a KB-SD-JWT (`typ: kb+sd-jwt`)
signed with the previous hop's `cnf.jwk` (`kb+sd-jwt+kb` for a delegation to a sub-agent's key),
carrying `iat`, `aud`, `nonce`, `sd_hash` (sha-256 of the previous token, disclosures included) and its own mandate the same way. Tokens end with `~` and are
joined by `~`, so hops are separated by `~~`. Built on `sd-jwt` (issuer and verifier) and `jwcrypto`.
"""

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS, InvalidJWSSignature
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

ALG = "ES256"
ROOT_TYP = "dc+sd-jwt"
HOP_TYP = "kb+sd-jwt"
DELEGATION_TYP = "kb+sd-jwt+kb"
CHECKOUT_TYP = "checkout+jwt"
RECEIPT_TYP = "receipt+jwt"
HOP_SEPARATOR = "~~"
PUBLIC_FIELDS = ("kty", "crv", "x", "y", "kid", "alg", "use")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def digest(text: str) -> str:
    """base64url(sha-256(text)): AP2's `checkout_hash`, `sd_hash`, and the hash a receipt references."""
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


def new_key(kid: str) -> JWK:
    """A fresh P-256 key for ES256 signatures."""
    return JWK.generate(kty="EC", crv="P-256", kid=kid, alg=ALG, use="sig")


def key_from_private(private: bytes) -> JWK:
    return JWK.from_json(private.decode())


def private_bytes(key: JWK) -> bytes:
    return key.export_private().encode()


def public_jwk(key: JWK) -> dict[str, Any]:
    """The public half as a JWK (types/jwk.json: kty, crv, x, y, kid, alg, use)."""
    public = key.export_public(as_dict=True)
    return {name: public[name] for name in PUBLIC_FIELDS if name in public} | {"alg": ALG, "use": "sig"}


def key_of(jwk: dict[str, Any]) -> JWK:
    """A public JWK dict as a key; ValueError when it is not an EC P-256 public key."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise ValueError("not an EC P-256 public key")
    try:
        return JWK(**{name: jwk[name] for name in ("kty", "crv", "x", "y") if name in jwk})
    except Exception as exc:  # jwcrypto raises several types for a bad coordinate
        raise ValueError(f"not a usable JWK: {exc}") from None


@dataclass(frozen=True, slots=True)
class Token:
    """One hop of a chain, parsed but not verified: `sd_jwt` is what the next hop's `sd_hash` covers."""

    jwt: str
    disclosures: tuple[str, ...]
    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def sd_jwt(self) -> str:
        return "~".join((self.jwt, *self.disclosures)) + "~"


def _segment(text: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        raise ValueError("a JWT segment is not base64url JSON") from None
    if not isinstance(value, dict):
        raise ValueError("a JWT segment is not a JSON object")
    return value


def parse_token(text: str) -> Token:
    parts = text.split("~")
    jwt, disclosures = parts[0], parts[1:]
    if disclosures and disclosures[-1] == "":
        disclosures = disclosures[:-1]
    if any(not d for d in disclosures) or jwt.count(".") != 2:
        raise ValueError("malformed SD-JWT")
    header, claims, _ = jwt.split(".")
    return Token(jwt, tuple(disclosures), _segment(header), _segment(claims))


def parse_chain(text: str) -> list[Token]:
    """The hops of a serialized chain, root first; ValueError when it is not one."""
    if not isinstance(text, str) or not text or len(text) > 200_000:
        raise ValueError("a mandate chain is a non-empty string")
    return [parse_token(part) for part in text.rstrip("~").split(HOP_SEPARATOR)]


def serialize(tokens: list[str]) -> str:
    """Join tokens (each ending with `~`) into a chain."""
    return "~".join(token if token.endswith("~") else token + "~" for token in tokens)


class _Verifier(SDJWTVerifier):
    """sd-jwt's verifier (disclosures hashed, matched and resolved as it does), with the ES256 signature checked by
    `cryptography` directly: jwcrypto's JWS object costs more than the signature itself (it deep-copies its header
    registry for each token). Only for `verified_claims`, which checked that the header names ES256."""

    def _verify_sd_jwt(self, cb_get_issuer_key: Any, sign_alg: str | None = None) -> None:
        signing_input, _, signature = self._unverified_input_sd_jwt.rpartition(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        if len(raw) != 64:
            raise InvalidJWSSignature("an ES256 signature is 64 bytes")
        issuer = cb_get_issuer_key(self._unverified_input_sd_jwt_payload.get("iss"), None)
        if issuer.get("crv") != "P-256":
            raise InvalidJWSSignature("an ES256 signature needs a P-256 key")
        key = issuer.get_op_key("verify")
        try:
            key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                       signing_input.encode("ascii"), ECDSA(SHA256()))
        except InvalidSignature:
            raise InvalidJWSSignature("the signature does not verify") from None
        self._sd_jwt_payload = self._unverified_input_sd_jwt_payload  # what was signed: verified now
        self._holder_public_key_payload = self._sd_jwt_payload.get("cnf", None)


def verified_claims(token: Token, key: JWK) -> dict[str, Any]:
    """The token's claims with its disclosures resolved, if `key` signed it (ES256); ValueError otherwise."""
    if token.header.get("alg") != ALG:
        raise ValueError(f"only {ALG} signatures are accepted")
    try:
        return _Verifier(token.sd_jwt, lambda _iss, _header: key).get_verified_payload()
    except InvalidJWSSignature:
        raise ValueError("the signature does not verify") from None
    except Exception as exc:  # the verifier raises bare exceptions for bad disclosures
        raise ValueError(f"the SD-JWT does not verify: {exc}") from None


def mandate_in(claims: dict[str, Any]) -> dict[str, Any]:
    """The one mandate a verified hop carries (`delegate_payload[0]`)."""
    items = claims.get("delegate_payload")
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise ValueError("a hop carries exactly one disclosed mandate in delegate_payload")
    return items[0]


def _header(key: JWK, typ: str) -> dict[str, Any]:
    return {"typ": typ, "kid": key["kid"]} if key.get("kid") else {"typ": typ}


def issue_open(issuer_key: JWK, mandate: dict[str, Any], iss: str) -> str:
    """The root SD-JWT: the credential provider's signature over the open mandate (which names the agent's `cnf`)."""
    issuer = SDJWTIssuer({"iss": iss, "delegate_payload": [SDObj(mandate)]}, issuer_key, sign_alg=ALG,
                         extra_header_parameters=_header(issuer_key, ROOT_TYP))
    return issuer.sd_jwt_issuance


def close(chain: str, holder_key: JWK, mandate: dict[str, Any], aud: str, nonce: str,
          iat: int | None = None, typ: str = HOP_TYP) -> str:
    """The chain with one more hop: `mandate` signed by the holder of the last hop's `cnf` key for `aud`/`nonce`
    (`typ` DELEGATION_TYP: an open mandate handed on to the key in its own `cnf`, not the closed one)."""
    previous = parse_chain(chain)[-1]
    claims = {"delegate_payload": [SDObj(mandate)], "iat": int(time.time()) if iat is None else iat, "aud": aud,
              "nonce": nonce, "sd_hash": digest(previous.sd_jwt)}
    hop = SDJWTIssuer(claims, holder_key, sign_alg=ALG, extra_header_parameters=_header(holder_key, typ))
    return serialize([chain, hop.sd_jwt_issuance])


def unverified_claims(token: str) -> dict[str, Any]:
    """A compact JWT's claims, not verified (what a holder reads before deciding to sign); ValueError if none."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise ValueError("not a compact JWT")
    return _segment(token.split(".")[1])


def sign_jwt(key: JWK, claims: dict[str, Any], typ: str) -> str:
    """A compact ES256 JWS of `claims` (the merchant's checkout JWT, a receipt), signed with `cryptography` directly:
    jwcrypto's JWS object costs three times the signature itself (verify_jwt reads it back with jwcrypto)."""
    header = {"alg": ALG, **_header(key, typ)}
    signing_input = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
    r, s = decode_dss_signature(key.get_op_key("sign").sign(signing_input.encode("ascii"), ECDSA(SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verify_jwt(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of a compact JWS signed by a key of `jwks` (matched by `kid`); ValueError otherwise."""
    header = _segment(token.split(".")[0])
    if header.get("alg") != ALG:
        raise ValueError(f"only {ALG} signatures are accepted")
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == header.get("kid"):
            jws = JWS()
            try:
                jws.deserialize(token)
                jws.verify(key_of(jwk), alg=ALG)
            except InvalidJWSSignature:
                raise ValueError("the signature does not verify") from None
            return json.loads(jws.payload)
    raise ValueError("no key of the set signed it")
