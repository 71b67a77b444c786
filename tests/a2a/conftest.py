"""Fixtures of the A2A tests (server and client halves): the session's gateway on a real port, and a published agent
of a fresh org on the scripted model (answers at once) with its org's API key, its A2A base URL (naming the org by
its slug, as the card does) and card URL,
and official a2a-sdk clients for it on either binding."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver
from a2a.types.a2a_pb2 import AgentCard

from shared.contracts.tenancy import ORG_RESOLVE_PUBLIC
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent, owner, stranger  # noqa: F401 (fixtures)
from tests.agents.scripted_model import Script, ScriptedModel
from tests.tenancy.conftest import Account

ANSWER = "Forty-two, said the scripted model."
ClientMaker = Callable[..., Any]


@dataclass
class Published:
    """A deployed agent reachable over A2A, and who may call it."""

    account: Account
    slug: str
    base_url: str
    script: Script

    @property
    def card_url(self) -> str:
        return f"{self.base_url}/.well-known/agent-card.json"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.account.key}"}


async def publish(bus: BusClient, gateway_url: str, account: Account, server: ScriptedModel,
                  *replies: Any, **config: Any) -> Published:
    model, script = server.script(*(replies or ({"text": ANSWER},)))
    agent = await make_agent(bus, account, model, **config)
    org = await bus.request(ORG_RESOLVE_PUBLIC, {"ref": str(account.org_id)})
    return Published(account, agent.slug, f"{gateway_url}/a2a/{org.slug}/{agent.slug}", script)


@pytest.fixture
async def published(bus: BusClient, gateway: str, owner: Account,  # noqa: F811
                    model_server: ScriptedModel) -> Published:  # noqa: F811
    """A deployed agent of a fresh org whose model answers at once."""
    return await publish(bus, gateway, owner, model_server)


async def fetch_card(agent: Published) -> AgentCard:
    async with httpx.AsyncClient(timeout=30) as http:
        return await A2ACardResolver(http, agent.base_url).get_agent_card()


@asynccontextmanager
async def a2a_client(agent: Published, binding: str = "JSONRPC", *, streaming: bool = False,
                     key: str | None = None) -> AsyncIterator[Client]:
    """An official a2a-sdk client of the agent on one binding (`JSONRPC` or `HTTP+JSON`), with an API key."""
    card = await fetch_card(agent)
    async with httpx.AsyncClient(headers=agent.headers(key), timeout=60) as http:
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming,
                                            supported_protocol_bindings=[binding])).create(card)
        try:
            yield client
        finally:
            await client.close()
