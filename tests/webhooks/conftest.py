"""Inbound webhook fixtures: an org's webhook source over real HTTP, and webhooks signed as a provider signs them.

A `standard` webhook is signed by the official `standardwebhooks.Webhook` class (what Svix, Clerk and the
Standard Webhooks SDKs send); an `hmac` one with the standard library, as GitHub-style providers do.
"""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
from standardwebhooks.webhooks import Webhook

from tests.gateway.conftest import Caller, alice, bob, http  # noqa: F401 (fixtures)
from tests.tenancy.conftest import admin, mailbox  # noqa: F401 (fixtures)

MAPPINGS = {
    "payment.succeeded": {"event_type": "payment_processed"},
    "user.created": {"action": "invite", "email_path": "data.email_addresses[0].email_address"},
}


async def new_source(caller: Caller, **fields: Any) -> dict[str, Any]:
    """A source of the caller's org; the reply (with the secret, shown this once)."""
    response = await caller.call("POST", "/v1/webhook-sources", {"name": f"src-{uuid4().hex[:8]}",
                                                                 "mappings": MAPPINGS, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def standard_headers(secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid4().hex}"
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body), "content-type": "application/json"}


def hmac_signature(secret: str, message: bytes, encoding: str = "hex") -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def body_of(event_type: str, **data: Any) -> bytes:
    return json.dumps({"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}).encode()


async def deliver(client: httpx.AsyncClient, source: dict[str, Any], body: bytes,
                  headers: dict[str, str]) -> httpx.Response:
    """POST `body` to the source's receiver with `headers` (no API key: `client` is the keyless one)."""
    return await client.post(f"/v1/webhooks/in/{source['source']['id']}", content=body, headers=headers)
