"""Envelope encryption, the pure part: data keys seal values (AES-256-GCM), key-encryption keys (KEKs) wrap data keys.

A sealed value (`seal`) is `0x02 | data key id (16 bytes) | nonce (12) | ciphertext+tag`. The additional
authenticated data binds the version, the data key's id and the owner (`owner(...)`: org, thing, field path, purpose),
so a blob copied to another owner, or relabelled with another key id, does not open. Which data key an org uses, and
where it is kept wrapped, is the runtime's business (`shared.runtime.keyring`); this module does no I/O but the KEK
file.

`KeyEncryptionKeys` is the small KMS-shaped interface (`wrap` / `unwrap`) the keyring needs. `StaticKeks` implements
it from a fixed configuration (settings), `LocalKeks` from a 0600 JSON file in the data dir: several KEKs known at
once, the current one wraps, the old ones still unwrap, until they are retired. Another process rotating the file
is seen at the next `wrap` or at an unknown id's `unwrap`.
"""

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENVELOPE_VERSION = b"\x02"
_ID_BYTES = 16
_NONCE_BYTES = 12
_HEADER = 1 + _ID_BYTES + _NONCE_BYTES
DATA_KEY_BYTES = 32


def owner(*parts: str | bytes | UUID) -> bytes:
    """The additional data naming a sealed value's owner: each part length-prefixed, so parts cannot run together."""
    encoded = [p.bytes if isinstance(p, UUID) else p.encode() if isinstance(p, str) else p for p in parts]
    return b"".join(len(part).to_bytes(4, "big") + part for part in encoded)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)


def is_envelope(blob: bytes) -> bool:
    return len(blob) > _HEADER and blob[:1] == ENVELOPE_VERSION


def data_key_id(blob: bytes) -> UUID:
    """The id of the data key that sealed `blob`; ValueError if it is not an envelope blob."""
    if not is_envelope(blob):
        raise ValueError("not an envelope-sealed value")
    return UUID(bytes=blob[1:1 + _ID_BYTES])


def seal(data_key: bytes, key_id: UUID, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    header = ENVELOPE_VERSION + key_id.bytes
    return header + nonce + AESGCM(data_key).encrypt(nonce, plaintext, header + aad)


def open_sealed(data_key: bytes, blob: bytes, aad: bytes) -> bytes:
    """The plaintext; ValueError if the blob was altered, moved to another owner, or sealed under another key."""
    if not is_envelope(blob):
        raise ValueError("not an envelope-sealed value")
    header, nonce = blob[:1 + _ID_BYTES], blob[1 + _ID_BYTES:_HEADER]
    try:
        return AESGCM(data_key).decrypt(nonce, blob[_HEADER:], header + aad)
    except InvalidTag:
        raise ValueError("the sealed value does not authenticate (altered, moved, or another key)") from None


class KeyEncryptionKeys(Protocol):
    """What a KMS does for the keyring: wrap a data key under the current KEK, unwrap under the KEK named."""

    @property
    def current(self) -> str: ...

    def wrap(self, plaintext_key: bytes) -> tuple[str, bytes]: ...

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes: ...


class UnknownKek(LookupError):
    """A data key is wrapped under a KEK this process does not (or no longer) know."""


def _new_kek_id() -> str:
    return f"kek-{secrets.token_hex(6)}"


def _new_kek() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _wrap_aad(kek_id: str) -> bytes:
    return b"one.kek.wrap.v1:" + kek_id.encode()


class StaticKeks:
    """KEKs given whole (`{"current": id, "keys": {id: base64 of 32 bytes}}`, e.g. from settings): they wrap and
    unwrap; adding or retiring one is a change of that configuration, not something the keyring does."""

    def __init__(self, state: dict[str, Any], where: str = "the configured key-encryption keys") -> None:
        self.where = where
        self._use(state)

    @classmethod
    def from_json(cls, text: str, where: str = "the configured key-encryption keys") -> "StaticKeks":
        try:
            state = json.loads(text)
            keks = cls(state, where)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{where}: not {{\"current\": id, \"keys\": {{id: base64}}}}: {error}") from None
        if len(keks._keys[keks._current]) != 32:
            raise ValueError(f"{where}: a key-encryption key must be 32 bytes")
        return keks

    def _use(self, state: dict[str, Any]) -> None:
        self._keys = {kek_id: base64.b64decode(key) for kek_id, key in state["keys"].items()}
        self._current = state["current"]
        if self._current not in self._keys:
            raise KeyError(f"the current KEK {self._current!r} is not among the keys")

    def _refresh(self) -> None:
        """Nothing to reload: the configuration is fixed for the process."""

    def _load(self) -> None:
        """Nothing to reload: the configuration is fixed for the process."""

    @property
    def current(self) -> str:
        self._refresh()
        return self._current

    @property
    def ids(self) -> list[str]:
        self._refresh()
        return sorted(self._keys)

    def wrap(self, plaintext_key: bytes) -> tuple[str, bytes]:
        kek_id = self.current
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return kek_id, nonce + AESGCM(self._keys[kek_id]).encrypt(nonce, plaintext_key, _wrap_aad(kek_id))

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        if kek_id not in self._keys:
            self._load()
        if kek_id not in self._keys:
            raise UnknownKek(f"no key-encryption key {kek_id!r} in {self.where}")
        try:
            return AESGCM(self._keys[kek_id]).decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _wrap_aad(kek_id))
        except InvalidTag:
            raise ValueError(f"a data key wrapped under {kek_id!r} does not authenticate") from None


class LocalKeks(StaticKeks):
    """KEKs kept in a 0600 JSON file (the same shape), generated on first use; `rotate` and `retire` rewrite it.

    Replicas must share the file (a shared data dir), as they share `sealing.secret_file`'s secret today.
    """

    def __init__(self, path: Path) -> None:
        self.path, self.where = path, str(path)
        self._keys: dict[str, bytes] = {}
        self._current = ""
        self._stamp: tuple[int, int] | None = None
        self._load()

    def rotate(self) -> str:
        """Add a KEK and make it current (the others still unwrap); its id."""
        with self._locked() as state:
            kek_id = _new_kek_id()
            state["keys"][kek_id] = _new_kek()
            state["current"] = kek_id
        return kek_id

    def retire(self, kek_id: str) -> None:
        """Forget a KEK that wraps nothing any more (the caller checked); the current one cannot be retired."""
        with self._locked() as state:
            if state["current"] == kek_id:
                raise ValueError(f"{kek_id!r} is the current key-encryption key")
            state["keys"].pop(kek_id, None)

    def _stamp_now(self) -> tuple[int, int] | None:
        """The file's identity: replaced atomically on every change, so a new inode (the mtime alone may be coarse)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def _refresh(self) -> None:
        if self._stamp_now() != self._stamp:
            self._load()

    def _load(self) -> None:
        if not self.path.exists():
            with self._locked():
                pass  # creates the file with a first KEK
            return
        self._read()

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write the file under an exclusive lock, replacing it atomically (0600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.exists():
                state = json.loads(self.path.read_text())
            else:
                first = _new_kek_id()
                state = {"current": first, "keys": {first: _new_kek()}}
            yield state
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(state, out)
            os.replace(temporary, self.path)
        self._read()

    def _read(self) -> None:
        self._stamp = self._stamp_now()
        self._use(json.loads(self.path.read_text()))
