"""The gateway's key cache: one verification per key at a time, answers kept for the TTL, outages never."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.gateway.auth import KeyVerifier
from shared.contracts.tenancy import VerifiedKey
from shared.kernel.errors import OneError, Unauthenticated, Unavailable


class FakeTenancy:
    """Answers `tenancy.key.verify` from a script, counting the requests."""

    def __init__(self, *answers: VerifiedKey | OneError) -> None:
        self.answers = list(answers)
        self.requests = 0
        self.release = asyncio.Event()
        self.release.set()

    async def request(self, spec: Any, payload: dict[str, Any], ctx: Any = None) -> VerifiedKey:
        self.requests += 1
        await self.release.wait()
        answer = self.answers[min(self.requests, len(self.answers)) - 1]
        if isinstance(answer, OneError):
            raise answer
        return answer


def verified(expires_at: datetime | None = None) -> VerifiedKey:
    return VerifiedKey(org_id=uuid4(), actor_id=uuid4(), key_id="k" * 12, role="org_user", permissions=[], scopes=[],
                       org_status="active", writable=True, expires_at=expires_at)


async def test_concurrent_first_requests_share_one_verification() -> None:
    tenancy = FakeTenancy(verified())
    tenancy.release.clear()
    keys = KeyVerifier(tenancy, ttl=10)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(keys.verify("key")) for _ in range(20)]
    await asyncio.sleep(0)
    tenancy.release.set()
    contexts = await asyncio.gather(*waiting)
    assert tenancy.requests == 1 and len({c.org_id for c in contexts}) == 1
    await keys.verify("key")
    assert tenancy.requests == 1  # within the TTL: from the cache


async def test_answers_expire_with_the_ttl() -> None:
    tenancy = FakeTenancy(verified(), Unauthenticated("revoked"))
    keys = KeyVerifier(tenancy, ttl=0.05)  # type: ignore[arg-type]
    await keys.verify("key")
    await asyncio.sleep(0.06)
    with pytest.raises(Unauthenticated):
        await keys.verify("key")
    with pytest.raises(Unauthenticated):  # the refusal is kept too: a bad key costs tenancy one request per TTL
        await keys.verify("key")
    assert tenancy.requests == 2


async def test_an_outage_is_not_remembered() -> None:
    tenancy = FakeTenancy(Unavailable("tenancy is down"), verified())
    keys = KeyVerifier(tenancy, ttl=10)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        await keys.verify("key")
    await keys.verify("key")
    assert tenancy.requests == 2


async def test_a_key_that_expires_while_cached_is_refused() -> None:
    tenancy = FakeTenancy(verified(expires_at=datetime.now(UTC) + timedelta(milliseconds=50)))
    keys = KeyVerifier(tenancy, ttl=10)  # type: ignore[arg-type]
    await keys.verify("key")
    await asyncio.sleep(0.06)
    with pytest.raises(Unauthenticated):
        await keys.verify("key")


async def test_the_cache_is_bounded_and_keeps_no_secret() -> None:
    tenancy = FakeTenancy(verified())
    keys = KeyVerifier(tenancy, ttl=10, size=3)  # type: ignore[arg-type]
    for n in range(5):
        await keys.verify(f"secret-{n}")
    assert len(keys._known) == 3
    assert not any(b"secret" in digest for digest in keys._known)
