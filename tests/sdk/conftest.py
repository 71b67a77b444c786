"""SDK fixtures: a fresh org's owner, connected as a user would be, over the bus or over HTTP (the gateway served here)."""

from collections.abc import AsyncIterator

import pytest

from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.tools.sdk import One
from tests.tenancy.conftest import Account, create_org  # noqa: F401 (fixtures)


@pytest.fixture
async def owner(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    return await create_org(bus, platform)


async def connect(transport: str, account: Account, settings: Settings, url: str) -> One:
    """What a user has: a key, and either the bus's URL or the gateway's."""
    if transport == "bus":
        return await One.connect(nats_url=settings.nats_url, key=account.key)
    return await One.connect(url=url, key=account.key)


@pytest.fixture(params=["bus", "http"])
async def one(request: pytest.FixtureRequest, owner: Account, settings: Settings, gateway: str) -> AsyncIterator[One]:  # noqa: F811
    async with await connect(request.param, owner, settings, gateway) as client:
        yield client
