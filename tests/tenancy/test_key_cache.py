"""The verified-key cache's loads: one per key at a time, never one that predates an invalidation."""

import asyncio

import pytest

from services.tenancy.service_keys import Credentials, _Loaded
from shared.kernel.errors import Unauthenticated


class SlowLoads:
    """Stands in for the database: counts loads and finishes them when told to."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()

    async def load(self) -> _Loaded:
        self.started += 1
        number = self.started
        await self.release.wait()
        return _Loaded(b"hash", None, None, f"load {number}")


@pytest.fixture
def creds() -> Credentials:
    return Credentials(b"pepper", ttl=2.0)


class TestLoadOnce:
    async def test_concurrent_misses_of_a_key_share_one_load(self, creds: Credentials) -> None:
        loads = SlowLoads()
        waiting = [asyncio.create_task(creds.load_once("k1", loads.load)) for _ in range(20)]
        await asyncio.sleep(0)
        loads.release.set()
        results = await asyncio.gather(*waiting)
        assert loads.started == 1 and {r.refusal for r in results} == {"load 1"}

    async def test_different_keys_load_separately(self, creds: Credentials) -> None:
        loads = SlowLoads()
        loads.release.set()
        await asyncio.gather(creds.load_once("k1", loads.load), creds.load_once("k2", loads.load))
        assert loads.started == 2

    async def test_a_verify_after_an_invalidation_does_not_join_an_older_load(self, creds: Credentials) -> None:
        loads = SlowLoads()
        before = asyncio.create_task(creds.load_once("k1", loads.load))
        await asyncio.sleep(0)
        creds.apply_invalidation({"key_ids": ["k1"]})
        after = asyncio.create_task(creds.load_once("k1", loads.load))
        await asyncio.sleep(0)
        loads.release.set()
        assert ((await before).refusal, (await after).refusal) == ("load 1", "load 2")

    async def test_a_failed_load_is_not_kept(self, creds: Credentials) -> None:
        calls = 0

        async def unknown_key() -> _Loaded:
            nonlocal calls
            calls += 1
            raise Unauthenticated("invalid API key")

        for _ in range(2):
            with pytest.raises(Unauthenticated):
                await creds.load_once("k1", unknown_key)
        assert calls == 2

    async def test_a_caller_that_gives_up_does_not_cancel_the_load_for_the_others(self, creds: Credentials) -> None:
        loads = SlowLoads()
        impatient = asyncio.create_task(creds.load_once("k1", loads.load))
        patient = asyncio.create_task(creds.load_once("k1", loads.load))
        await asyncio.sleep(0)
        impatient.cancel()
        await asyncio.sleep(0)
        loads.release.set()
        assert (await patient).refusal == "load 1" and impatient.cancelled()


def test_the_keyed_hash_is_hmac_sha256_under_the_pepper(creds: Credentials) -> None:
    from shared.kernel.api_keys import hash_matches, keyed_hash

    key = "one_live_0123456789ab_" + "A" * 32
    assert creds.hash(key) == keyed_hash(b"pepper", key) and creds.hash(key) == creds.hash(key)
    assert creds.matches(key, keyed_hash(b"pepper", key)) and hash_matches(b"pepper", key, creds.hash(key))
    assert not creds.matches(key[:-1] + "B", keyed_hash(b"pepper", key))


def test_a_fingerprint_tells_the_same_key_from_any_other_and_is_keyed_per_process(creds: Credentials) -> None:
    key = "one_live_0123456789ab_" + "A" * 32
    fingerprint = creds.fingerprint(key)
    assert creds.fingerprint_matches(key, fingerprint) and len(fingerprint) == 32
    assert not creds.fingerprint_matches(key[:-1] + "B", fingerprint)
    assert Credentials(b"pepper", ttl=2.0).fingerprint(key) != fingerprint  # another process, another key
