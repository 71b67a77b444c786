"""Graph fixtures: real organizations (tenancy counts their things), a stranger org, and the owner's DB view."""

from typing import Any

import pytest

from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE
from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, add_member, admin, create_org  # noqa: F401 (fixtures)


@pytest.fixture
async def owner(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    """The owner of a fresh organization."""
    return await create_org(bus, platform)


@pytest.fixture
async def stranger(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    """The owner of another fresh organization."""
    return await create_org(bus, platform)


async def make_thing(bus: BusClient, ctx: AuthContext, type_: str = "blog_post", name: str = "A thing", **fields: Any) -> Any:
    return await bus.request(THING_CREATE, {"type": type_, "name": name, **fields}, ctx)


async def link(bus: BusClient, ctx: AuthContext, from_id: Any, to_id: Any, type_: str = "references", **fields: Any) -> Any:
    return await bus.request(
        CONNECTION_CREATE, {"from_id": str(from_id), "to_id": str(to_id), "type": type_, **fields}, ctx
    )
