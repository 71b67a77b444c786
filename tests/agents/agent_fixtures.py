"""Fixtures for the agents service's tests: real organizations (`owner`, `stranger`), a helper that creates and
deploys an agent, chat and event helpers.

Import the fixtures by name in a test module (`from tests.agents.agent_fixtures import ...  # noqa: F401`); the
scripted model server (`model_server`) is a session fixture of `tests/conftest.py`, defined once.
"""

import asyncio
import json
from typing import Any


from shared.contracts.agents import AGENT_CREATE, AGENT_DEPLOY, CHAT
from shared.contracts.eventlog import QUERY
from shared.runtime.client import BusClient
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account, admin, unique  # noqa: F401 (fixtures)


async def make_agent(bus: BusClient, account: Account, model: str, *, deploy: bool = True, slug: str | None = None,
                     type_: str = "service_agent", **config: Any) -> Any:
    body = {"slug": slug or unique("agent"), "name": "Test agent", "type": type_,
            "config": {"model": model, "system_prompt": "You are a test agent.", **config}}
    agent = await bus.request(AGENT_CREATE, body, account.ctx)
    if deploy:
        agent = await bus.request(AGENT_DEPLOY, {"slug": agent.slug}, account.ctx)
    return agent


async def chat(bus: BusClient, account: Account, slug: str, message: str = "Hello", **fields: Any) -> Any:
    return await bus.request(CHAT, {"slug": slug, "message": message, **fields}, account.ctx, timeout=60)


async def wait_events(bus: BusClient, account: Account, types: list[str], minimum: int, timeout: float = 20,
                      **filters: Any) -> list[Any]:
    """The org's events of these types once there are at least `minimum` of them (events arrive through the outbox)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        page = await bus.request(QUERY, {"types": types, "limit": 100, **filters}, account.ctx)
        if len(page.events) >= minimum or asyncio.get_running_loop().time() > deadline:
            return page.events
        await asyncio.sleep(0.2)


def created_id(body: dict[str, Any]) -> str:
    """The id of the thing the previous tool call created (read from the tool message the platform sent the model)."""
    return json.loads([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])["id"]
