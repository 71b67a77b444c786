"""Social fixtures: the graph's org fixtures, and people (things) to follow and react with."""

from typing import Any

from shared.contracts.graph import THING_CREATE_BATCH
from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import admin  # noqa: F401 (fixtures)


async def people(bus: BusClient, ctx: AuthContext, count: int, type_: str = "audience_member") -> list[Any]:
    """`count` people of the org as things (one batch create)."""
    batch = [{"type": type_, "name": f"person {i}"} for i in range(count)]
    return (await bus.request(THING_CREATE_BATCH, {"things": batch}, ctx)).things
