"""Time-based one-time passwords (RFC 6238 over RFC 4226), backup codes, and sealing a TOTP secret at rest.

Standard library only. A TOTP secret must be recoverable to check codes, so it
is stored sealed (`shared.kernel.sealing`: encrypt-then-MAC, both keys derived from
the API-key pepper). A sealed secret opens only for the person it was sealed for,
and only with the same pepper.
"""

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

from shared.kernel import sealing

DIGITS = 6
PERIOD = 30
WINDOW = 1
"""Steps either side of now a code may come from: clocks drift, people type slowly."""
SECRET_BYTES = 20
BACKUP_CODES = 10

_PURPOSE = b"one.tenancy.totp-secret"
"""The sealing keys' label (`shared.kernel.sealing`): secrets sealed before the move still open."""
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_text(secret: bytes) -> str:
    """Base32 without padding: what authenticator apps take."""
    return base64.b32encode(secret).decode().rstrip("=")


def otpauth_uri(secret: bytes, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app scans from a QR code."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode({"secret": secret_text(secret), "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": PERIOD})
    return f"otpauth://totp/{label}?{query}"


def hotp(secret: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226: HMAC-SHA1 of the counter, dynamically truncated to `digits` decimal digits."""
    digest = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFF_FFFF
    return str(value % 10**digits).zfill(digits)


def step_at(unix_time: float) -> int:
    return int(unix_time // PERIOD)


def totp(secret: bytes, unix_time: float, digits: int = DIGITS) -> str:
    """RFC 6238 with T0 = 0 and a 30 s step."""
    return hotp(secret, step_at(unix_time), digits)


def matching_step(secret: bytes, code: str, unix_time: float, after: int | None) -> int | None:
    """The step within ±WINDOW of `unix_time` whose code is `code`, if later than `after` (replays are refused)."""
    now_step = step_at(unix_time)
    found = None
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if hmac.compare_digest(hotp(secret, step), code) and (after is None or step > after):
            found = step
    return found


def is_totp_code(code: str) -> bool:
    return len(code) == DIGITS and code.isdigit()


def new_backup_codes(count: int = BACKUP_CODES) -> list[str]:
    """Single-use recovery codes, `xxxxx-xxxxx` (about 49 bits each)."""
    def one() -> str:
        chars = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(10))
        return f"{chars[:5]}-{chars[5:]}"

    return [one() for _ in range(count)]


def normalise_backup_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def seal(pepper: bytes, plaintext: bytes, context: bytes) -> bytes:
    """version | nonce | ciphertext | tag, the tag binding `context` (the owner's id) too."""
    return sealing.seal(pepper, plaintext, context, _PURPOSE)


def unseal(pepper: bytes, sealed: bytes, context: bytes) -> bytes:
    """The plaintext; ValueError if the blob was altered, moved to another owner, or sealed under another pepper."""
    return sealing.unseal(pepper, sealed, context, _PURPOSE)
