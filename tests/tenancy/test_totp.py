"""TOTP against RFC 6238's own test vectors, the ±1 step window, and the sealing of a secret at rest."""

import base64
import hashlib
import hmac
import re
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import uuid4

import pytest

from services.tenancy import totp

RFC_SECRET = b"12345678901234567890"
RFC_6238_SHA1 = [  # RFC 6238, appendix B: (Unix time, 8-digit TOTP, mode SHA1)
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


def reference_totp(secret: bytes, unix_time: float, digits: int = 6) -> str:
    """RFC 6238 written out independently of the service's code: HMAC-SHA1, dynamic truncation, 30 s steps."""
    mac = hmac.new(secret, (int(unix_time) // 30).to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(int.from_bytes(mac[offset:offset + 4], 'big') & 0x7FFFFFFF) % 10**digits:0{digits}d}"


@pytest.mark.parametrize(("unix_time", "expected"), RFC_6238_SHA1)
def test_the_rfc_6238_sha1_vectors(unix_time: int, expected: str) -> None:
    assert totp.totp(RFC_SECRET, unix_time, digits=8) == expected
    assert totp.totp(RFC_SECRET, unix_time) == expected[-6:]  # six digits: the same value mod 10^6
    assert reference_totp(RFC_SECRET, unix_time, 8) == expected


def test_a_code_is_good_one_step_either_side_and_not_further() -> None:
    now = 1_700_000_015.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        assert totp.matching_step(RFC_SECRET, reference_totp(RFC_SECRET, now + 30 * offset), now, None) == step + offset
    for offset in (-2, 2):
        assert totp.matching_step(RFC_SECRET, reference_totp(RFC_SECRET, now + 30 * offset), now, None) is None


def test_a_step_already_used_does_not_match_again() -> None:
    now = 1_700_000_015.0
    code = reference_totp(RFC_SECRET, now)
    step = totp.matching_step(RFC_SECRET, code, now, None)
    assert totp.matching_step(RFC_SECRET, code, now, step) is None  # replayed
    assert totp.matching_step(RFC_SECRET, reference_totp(RFC_SECRET, now - 30), now, step) is None  # older
    assert totp.matching_step(RFC_SECRET, reference_totp(RFC_SECRET, now + 30), now, step) == step + 1


def test_the_otpauth_uri_carries_the_secret_for_an_authenticator_app() -> None:
    secret = totp.new_secret()
    uri = urlsplit(totp.otpauth_uri(secret, "ann+2fa@example.test", "ONE"))
    assert (uri.scheme, uri.netloc, unquote(uri.path)) == ("otpauth", "totp", "/ONE:ann+2fa@example.test")
    query = {k: v[0] for k, v in parse_qs(uri.query).items()}
    assert query == {"secret": totp.secret_text(secret), "issuer": "ONE", "algorithm": "SHA1", "digits": "6", "period": "30"}
    text = query["secret"]
    assert base64.b32decode(text + "=" * (-len(text) % 8)) == secret and len(secret) == 20


def test_a_sealed_secret_opens_only_for_its_owner_under_the_same_pepper() -> None:
    secret, owner = totp.new_secret(), uuid4().bytes
    sealed = totp.seal(b"pepper", secret, owner)
    assert secret not in sealed and totp.seal(b"pepper", secret, owner) != sealed  # a fresh nonce each time
    assert totp.unseal(b"pepper", sealed, owner) == secret
    tampered = bytearray(sealed)
    tampered[20] ^= 1
    for pepper, blob, context in ((b"pepper", bytes(tampered), owner), (b"pepper", sealed, uuid4().bytes),
                                  (b"other", sealed, owner), (b"pepper", b"short", owner)):
        with pytest.raises(ValueError):
            totp.unseal(pepper, blob, context)


def test_backup_codes_are_distinct_and_readable() -> None:
    codes = totp.new_backup_codes()
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    assert totp.normalise_backup_code(" " + codes[0].upper().replace("-", " ")) == codes[0].replace("-", "")
