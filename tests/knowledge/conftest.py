"""Knowledge fixtures: real organizations from tenancy, things from the graph, and the owner's DB view."""

from typing import Any

import pytest

from services.graph.schemas import THING_CREATE
from shared.client import BusClient
from shared.envelope import AuthContext
from tests.tenancy.conftest import Account, admin, create_org, platform  # noqa: F401 (fixtures)


@pytest.fixture
async def owner(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    return await create_org(bus, platform)


@pytest.fixture
async def stranger(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    return await create_org(bus, platform)


async def make_thing(bus: BusClient, ctx: AuthContext, type_: str = "blog_post", name: str = "A post", **properties: Any) -> Any:
    return await bus.request(THING_CREATE, {"type": type_, "name": name, "properties": properties}, ctx)
