"""One signing scheme for what the platform sends to others' URLs: HMAC-SHA256 over `"<t>." + body`.

Used by HTTP tools' calls, A2A push notifications and ACP webhooks (`Merchant-Signature`): a receiver checks
the timestamp's age and the digest, as Stripe-style and ACP receivers already do.
"""

import hashlib
import hmac
import time


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value `t=<timestamp>,v1=<hex digest>` for `body` (the exact bytes sent) at `timestamp` (now)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"
