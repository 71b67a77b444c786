"""API keys: their format, their keyed hash, and the `tenancy.key.verify` contract.

A key reads `one_live_<key id>_<secret>`: the key id is public (it names the key
in lists and logs and finds its row), the secret is shown once and only its
HMAC-SHA256 under a server-side pepper is stored. The gateway and the CLI turn a
presented key into an `AuthContext` with `authenticate(bus, key)`.
"""

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from shared.kernel import subjects
from shared.runtime.client import BusClient
from shared.kernel.envelope import AuthContext, Payload, register_message
from shared.kernel.errors import Unauthenticated

KEY_PREFIX = "one_live_"
_KEY = re.compile(r"^one_live_([0-9a-f]{12})_([0-9A-Za-z]{32})$")
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class PresentedKey:
    key_id: str
    secret: str

    @property
    def full(self) -> str:
        return f"{KEY_PREFIX}{self.key_id}_{self.secret}"


def new_api_key() -> PresentedKey:
    """48 bits of key id, ~190 bits of secret."""
    return PresentedKey(secrets.token_hex(6), "".join(secrets.choice(_ALPHABET) for _ in range(32)))


def parse_api_key(text: str) -> PresentedKey:
    match = _KEY.fullmatch(text.strip())
    if match is None:
        raise Unauthenticated("not an API key of this platform (expected one_live_<id>_<secret>)")
    return PresentedKey(match.group(1), match.group(2))


def keyed_hash(pepper: bytes, value: str) -> bytes:
    return hmac.new(pepper, value.encode(), hashlib.sha256).digest()


def hash_matches(pepper: bytes, value: str, stored: bytes) -> bool:
    """Constant-time: the time taken says nothing about how much of the secret was right."""
    return hmac.compare_digest(keyed_hash(pepper, value), stored)


class VerifyKey(Payload):
    key: str = Field(min_length=1, max_length=200)


class VerifiedKey(BaseModel):
    """What a valid key stands for; `scopes` is already narrowed to reads when the org may not write."""

    org_id: UUID
    actor_id: UUID
    key_id: str
    role: str
    permissions: list[str]
    scopes: list[str]
    org_status: str
    writable: bool
    expires_at: datetime | None = None

    def auth_context(self) -> AuthContext:
        return AuthContext(self.org_id, self.actor_id, self.role, tuple(self.permissions), tuple(self.scopes))


VERIFY_KEY = register_message(
    "tenancy.key.verify", subjects.command("tenancy", "keys.verify"), VerifyKey, VerifiedKey, requires_auth=False
)


async def authenticate(bus: BusClient, key: str) -> AuthContext:
    """The edge's one call: a presented key in, the auth context to stamp on envelopes out."""
    return (await bus.request(VERIFY_KEY, VerifyKey(key=key))).auth_context()
