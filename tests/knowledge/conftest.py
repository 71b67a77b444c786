"""Knowledge fixtures: the graph's real organizations (`owner`, `stranger`), things with text, the owner's DB view."""

from typing import Any

from services.graph.schemas import THING_CREATE
from shared.client import BusClient
from shared.envelope import AuthContext
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import admin, platform  # noqa: F401 (fixtures)


async def make_thing(bus: BusClient, ctx: AuthContext, type_: str = "blog_post", name: str = "A post", **properties: Any) -> Any:
    """A thing whose `properties` are the keyword arguments (its text fields, for ingestion)."""
    return await bus.request(THING_CREATE, {"type": type_, "name": name, "properties": properties}, ctx)
