"""Verifying an inbound webhook's signature: Standard Webhooks, or one HMAC header. No SQL, no NATS.

The Standard Webhooks signature is computed by the official `standardwebhooks` package (`Webhook.sign`);
its `verify` is not used as is because its tolerance is fixed at five minutes and its one error type
does not say which check failed, while a source sets its own tolerance and the receiver answers a
missing signature, a wrong one and a stale timestamp with distinct codes. Every comparison is
constant-time, and every secret a source still accepts (the current one, and the previous one during
a rotation's grace period) is tried.
"""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from shared.contracts.tenancy.webhooks import (
    STANDARD_SECRET_PREFIX,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
    WebhookTimestampOutOfTolerance,
)

MAX_WEBHOOK_ID = 200


@dataclass(frozen=True, slots=True)
class HmacScheme:
    """How an `hmac` source signs: the header, its encoding and prefix, and the optional timestamp and id headers."""

    signature_header: str
    encoding: str
    prefix: str
    timestamp_header: str | None
    id_header: str | None


def standard_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError if it is not one (or too short to be safe)."""
    encoded = secret.removeprefix(STANDARD_SECRET_PREFIX).rstrip("=")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a standard webhook secret is `whsec_` followed by base64") from None
    if len(key) < 16:
        raise ValueError("a standard webhook secret must hold at least 16 bytes")
    return key


def _timestamp(value: str, tolerance: int, now: float) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise WebhookSignatureInvalid("the webhook timestamp is not a unix timestamp in seconds")
    timestamp = int(value)
    if abs(now - timestamp) > tolerance:
        raise WebhookTimestampOutOfTolerance(
            f"the webhook timestamp is more than {tolerance}s from now", {"tolerance_seconds": tolerance})
    return timestamp


def _webhook_id(value: str) -> str:
    if not value or len(value) > MAX_WEBHOOK_ID or not value.isprintable():
        raise WebhookSignatureInvalid(f"the webhook id must be 1-{MAX_WEBHOOK_ID} printable characters")
    return value


def verify_standard(secrets: Sequence[str], body: bytes, headers: Mapping[str, str], tolerance: int,
                    now: float) -> str:
    """The webhook id, if one of the `v1,` signatures in `webhook-signature` signs `<id>.<timestamp>.<body>`."""
    webhook_id, stamp, signatures = (headers.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (webhook_id and stamp and signatures):
        raise WebhookSignatureMissing("a standard webhook needs webhook-id, webhook-timestamp and webhook-signature")
    webhook_id = _webhook_id(webhook_id)
    signed_at = datetime.fromtimestamp(_timestamp(stamp, tolerance, now), UTC)
    passed = [s.encode() for s in signatures.split(" ") if s]
    for secret in secrets:
        expected = Webhook(standard_key(secret)).sign(webhook_id, signed_at, body).encode()
        if any(hmac.compare_digest(expected, signature) for signature in passed):
            return webhook_id
    raise WebhookSignatureInvalid("no webhook-signature matches the body under this source's secret")


def _digest(secret: str, message: bytes, encoding: str) -> str:
    raw = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


def verify_hmac(secrets: Sequence[str], scheme: HmacScheme, body: bytes, headers: Mapping[str, str], tolerance: int,
                now: float) -> str:
    """The webhook id (the id header's, else `sha256:<body digest>`), if the signature header signs the body."""
    signature = headers.get(scheme.signature_header)
    stamp = headers.get(scheme.timestamp_header) if scheme.timestamp_header else None
    if not signature or (scheme.timestamp_header and not stamp):
        raise WebhookSignatureMissing(f"this source's webhooks are signed in the {scheme.signature_header} header"
                                      + (f" with a {scheme.timestamp_header} timestamp" if scheme.timestamp_header else ""))
    message = body if stamp is None else f"{_timestamp(stamp, tolerance, now)}.".encode() + body
    signature = signature.strip()
    if not signature.startswith(scheme.prefix):
        raise WebhookSignatureInvalid(f"the signature must start with {scheme.prefix!r}")
    received = signature[len(scheme.prefix):]
    if scheme.encoding == "hex":
        received = received.lower()
    for secret in secrets:
        if hmac.compare_digest(_digest(secret, message, scheme.encoding).encode(), received.encode()):
            break
    else:
        raise WebhookSignatureInvalid("the signature does not match the body under this source's secret")
    if scheme.id_header and headers.get(scheme.id_header):
        return _webhook_id(headers[scheme.id_header])
    return "sha256:" + hashlib.sha256(message).hexdigest()
