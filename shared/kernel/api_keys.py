"""API keys: their format and their keyed hash.

A key reads `one_live_<key id>_<secret>`: the key id is public (it names the key
in lists and logs and finds its row), the secret is shown once and only its
HMAC-SHA256 under a server-side pepper is stored. Turning a presented key into
an auth context is tenancy's `tenancy.key.verify` (`shared.contracts.tenancy`).
"""

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

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
