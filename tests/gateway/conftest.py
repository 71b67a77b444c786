"""Gateway fixtures: callers of the session's gateway (`gateway`, in `tests/conftest.py`: the HTTP app served by
uvicorn on a free loopback port, against the session's real stack).

The app is built by `create_app` on the test bus, with a short key cache so revocation can be
observed; callers are real orgs and members with API keys issued by tenancy.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, add_member, create_org  # noqa: F401 (fixtures)

KEY_CACHE_TTL = 0.5


@dataclass
class Caller:
    """An account and an HTTP client that sends its key."""

    account: Account
    http: httpx.AsyncClient

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return await self.http.request(method, path, json=body, params=params or None)


@pytest.fixture
async def http(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no key."""
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        yield client


async def caller_for(gateway: str, account: Account, header: str = "bearer") -> Caller:
    headers = {"Authorization": f"Bearer {account.key}"} if header == "bearer" else {"X-API-Key": account.key}
    return Caller(account, httpx.AsyncClient(base_url=gateway, headers=headers, timeout=10))


@pytest.fixture
async def alice(gateway: str, bus: BusClient, platform: Account) -> AsyncIterator[Caller]:  # noqa: F811
    """The owner of a fresh org, over HTTP."""
    caller = await caller_for(gateway, await create_org(bus, platform))
    yield caller
    await caller.http.aclose()


@pytest.fixture
async def bob(gateway: str, bus: BusClient, platform: Account) -> AsyncIterator[Caller]:  # noqa: F811
    """The owner of another fresh org: the attacker of the cross-tenant suite."""
    caller = await caller_for(gateway, await create_org(bus, platform))
    yield caller
    await caller.http.aclose()


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 body with the stable code, and nothing of the inside."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["code"] and body["title"] and body["detail"]
    assert isinstance(body["details"], dict) and "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body
    return body
