"""Envelope encryption's pure part: AES-GCM blobs bound to their owner and data key, and the local KEK file."""

import base64
import json
import stat
from pathlib import Path

import pytest

from shared.kernel import sealing_envelope as envelope
from shared.kernel.ids import uuid7


def test_a_blob_opens_only_for_its_owner_and_key() -> None:
    key, key_id, org, thing = envelope.new_data_key(), uuid7(), uuid7(), uuid7()
    aad = envelope.owner("one.graph.property", org, thing, "apiKey")
    blob = envelope.seal(key, key_id, b"sk-secret", aad)
    assert b"sk-secret" not in blob and envelope.data_key_id(blob) == key_id and envelope.is_envelope(blob)
    assert envelope.seal(key, key_id, b"sk-secret", aad) != blob  # a fresh nonce each time
    assert envelope.open_sealed(key, blob, aad) == b"sk-secret"
    for other in (envelope.owner("one.graph.property", org, uuid7(), "apiKey"),
                  envelope.owner("one.graph.property", uuid7(), thing, "apiKey"),
                  envelope.owner("one.graph.property", org, thing, "token"),
                  envelope.owner("one.commerce.wallet-key", org, thing, "apiKey")):
        with pytest.raises(ValueError):
            envelope.open_sealed(key, blob, other)
    relabelled = blob[:1] + uuid7().bytes + blob[17:]
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    for bad in (relabelled, tampered):
        with pytest.raises(ValueError):
            envelope.open_sealed(key, bad, aad)
    with pytest.raises(ValueError):
        envelope.open_sealed(envelope.new_data_key(), blob, aad)
    with pytest.raises(ValueError):
        envelope.data_key_id(b"\x01" + bytes(60))  # the old sealing's format is not an envelope


def test_owner_parts_cannot_run_together() -> None:
    assert envelope.owner("ab", "c") != envelope.owner("a", "bc")


def test_local_keks_rotate_unwrap_old_and_retire(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "graph.keks.json"
    keks = envelope.LocalKeks(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = keks.current
    data_key = envelope.new_data_key()
    kek_id, wrapped = keks.wrap(data_key)
    assert kek_id == first and data_key not in wrapped
    second = keks.rotate()
    assert keks.current == second != first and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keks.unwrap(first, wrapped) == data_key
    assert keks.wrap(data_key)[0] == second
    with pytest.raises(ValueError):
        keks.retire(second)  # the current one
    keks.retire(first)
    with pytest.raises(envelope.UnknownKek):
        keks.unwrap(first, wrapped)
    with pytest.raises(ValueError):  # a wrapped key relabelled with another KEK's id does not unwrap
        keks.unwrap(second, wrapped)


def test_another_process_rotating_the_file_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "keks.json"
    here, there = envelope.LocalKeks(path), envelope.LocalKeks(path)
    assert here.current == there.current
    rotated = there.rotate()
    assert here.wrap(b"k" * 32)[0] == rotated  # the next wrap uses the new current KEK
    kek_id, wrapped = there.wrap(b"k" * 32)
    assert here.unwrap(kek_id, wrapped) == b"k" * 32


def test_keks_from_settings_wrap_and_unwrap_and_refuse_a_bad_configuration(tmp_path: Path) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    old = base64.b64encode(bytes(32)).decode()
    keks = envelope.StaticKeks.from_json(json.dumps({"current": "k2", "keys": {"k1": old, "k2": key}}))
    assert keks.current == "k2" and keks.ids == ["k1", "k2"]
    kek_id, wrapped = keks.wrap(b"d" * 32)
    assert kek_id == "k2" and keks.unwrap(kek_id, wrapped) == b"d" * 32
    with pytest.raises(envelope.UnknownKek):
        keks.unwrap("k3", wrapped)
    for bad in ("not json", json.dumps({"current": "k9", "keys": {"k1": key}}), json.dumps({"keys": {}}),
                json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(b"short").decode()}})):
        with pytest.raises(ValueError):
            envelope.StaticKeks.from_json(bad)
