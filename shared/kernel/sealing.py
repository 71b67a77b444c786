"""Sealing a secret at rest: what a service must read back (a TOTP secret, a wallet's key) but never store in clear.

Standard library only. XOR with an HMAC-SHA256 keystream (counter mode, random nonce) and an
HMAC-SHA256 tag over the nonce, the owner's id and the ciphertext (encrypt-then-MAC). Both keys are
derived from a server-side secret and a `purpose` label, so one secret seals several kinds of blob
that cannot be swapped for each other. A sealed blob opens only for the owner (`context`) it was
sealed for, only for the same purpose, and only with the same secret.
"""

import hashlib
import hmac
import logging
import os
import secrets
import struct
from pathlib import Path

_SEALED_VERSION = b"\x01"
_NONCE_BYTES = 16
_TAG_BYTES = 32

log = logging.getLogger(__name__)


def _keys(secret: bytes, purpose: bytes) -> tuple[bytes, bytes]:
    encryption = hmac.new(secret, purpose + b".encrypt.v1", hashlib.sha256).digest()
    authentication = hmac.new(secret, purpose + b".authenticate.v1", hashlib.sha256).digest()
    return encryption, authentication


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + struct.pack(">I", i), hashlib.sha256).digest() for i in range(-(-length // 32)))
    return b"".join(blocks)[:length]


def seal(secret: bytes, plaintext: bytes, context: bytes, purpose: bytes) -> bytes:
    """version | nonce | ciphertext | tag, the tag binding `context` (the owner's id) too."""
    encryption, authentication = _keys(secret, purpose)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    ciphertext = bytes(a ^ b for a, b in zip(plaintext, _keystream(encryption, nonce, len(plaintext)), strict=True))
    tag = hmac.new(authentication, _SEALED_VERSION + nonce + context + ciphertext, hashlib.sha256).digest()
    return _SEALED_VERSION + nonce + ciphertext + tag


def unseal(secret: bytes, sealed: bytes, context: bytes, purpose: bytes) -> bytes:
    """The plaintext; ValueError if the blob was altered, moved to another owner or purpose, or sealed under another
    secret."""
    if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES or sealed[:1] != _SEALED_VERSION:
        raise ValueError("not a sealed secret")
    encryption, authentication = _keys(secret, purpose)
    nonce, ciphertext, tag = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    expected = hmac.new(authentication, _SEALED_VERSION + nonce + context + ciphertext, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, tag):
        raise ValueError("the sealed secret does not authenticate")
    return bytes(a ^ b for a, b in zip(ciphertext, _keystream(encryption, nonce, len(ciphertext)), strict=True))


def secret_file(path: Path, setting: str) -> bytes:
    """The server-side secret kept in `path`, generated (0600) on first use; replicas share it, or set `setting`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            log.warning("generated a secret in %s; replicas must share it (or set %s)", path, setting)
    return path.read_text().strip().encode()
