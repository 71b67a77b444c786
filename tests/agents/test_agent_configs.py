"""Agents: a thing in the graph with the same id, versioned development configs, deploy to production, archive."""

import pytest

from shared.contracts.agents import (
    AGENT_ARCHIVE,
    AGENT_CONFIGURE,
    AGENT_CREATE,
    AGENT_DEPLOY,
    AGENT_GET,
    AGENT_VERSIONS,
    AgentArchived,
    ConfigVersionConflict,
    InvalidAgentConfig,
    NotDeployed,
    SlugTaken,
)
from shared.contracts.graph import THING_GET
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import chat, make_agent, owner  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account


async def test_agent_is_a_thing_with_versioned_configs_and_deploy(bus: BusClient, owner: Account) -> None:  # noqa: F811
    agent = await make_agent(bus, owner, "openai:some-model", deploy=False, tools=["thing_get"])
    thing = (await bus.request(THING_GET, {"id": str(agent.id)}, owner.ctx)).thing
    assert thing.type == "service_agent" and thing.properties["model"] == "openai:some-model"
    assert agent.development.version == 1 and agent.production is None

    changed = await bus.request(AGENT_CONFIGURE, {"slug": agent.slug, "expected_version": 1,
                                                  "config": {"model": "openai:other", "temperature": 0.5}}, owner.ctx)
    assert changed.development.version == 2 and changed.development.model == "openai:other"
    with pytest.raises(ConfigVersionConflict):
        await bus.request(AGENT_CONFIGURE, {"slug": agent.slug, "expected_version": 1, "config": {}}, owner.ctx)

    deployed = await bus.request(AGENT_DEPLOY, {"slug": agent.slug}, owner.ctx)
    assert deployed.production.version == 1 and deployed.production.model == "openai:other"
    again = await bus.request(AGENT_DEPLOY, {"id": str(agent.id)}, owner.ctx)
    assert again.production.version == 2
    versions = await bus.request(AGENT_VERSIONS, {"slug": agent.slug}, owner.ctx)
    assert sorted((c.environment.value, c.version) for c in versions.configs) == [
        ("development", 1), ("development", 2), ("production", 1), ("production", 2)]
    thing = (await bus.request(THING_GET, {"id": str(agent.id)}, owner.ctx)).thing
    assert thing.properties["model"] == "openai:other"


async def test_slug_unknown_tool_and_http_secret(bus: BusClient, owner: Account) -> None:  # noqa: F811
    agent = await make_agent(bus, owner, "openai:m", deploy=False, tools=["lookup"], http_tools=[
        {"name": "lookup", "description": "d", "url": "http://127.0.0.1:9/x", "secret": "s3cret"}])
    assert agent.development.http_tools[0].has_secret
    assert "s3cret" not in agent.model_dump_json()
    with pytest.raises(SlugTaken):
        await bus.request(AGENT_CREATE, {"slug": agent.slug, "name": "x"}, owner.ctx)
    with pytest.raises(InvalidAgentConfig):
        await bus.request(AGENT_CREATE, {"slug": agent.slug + "-b", "name": "x", "config": {"tools": ["rm_rf"]}},
                          owner.ctx)
    with pytest.raises(InvalidAgentConfig):
        await bus.request(AGENT_CREATE, {"slug": agent.slug + "-c", "name": "x", "type": "blog_post"}, owner.ctx)


async def test_production_chat_needs_a_deploy_and_archived_agents_do_not_run(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"text": "hi"})
    agent = await make_agent(bus, owner, model, deploy=False)
    with pytest.raises(NotDeployed):
        await chat(bus, owner, agent.slug)
    reply = await chat(bus, owner, agent.slug, environment="development")
    assert reply.run.status == "completed" and reply.run.answer == "hi"
    archived = await bus.request(AGENT_ARCHIVE, {"slug": agent.slug}, owner.ctx)
    assert archived.status == "archived"
    assert (await bus.request(AGENT_GET, {"slug": agent.slug}, owner.ctx)).status == "archived"
    with pytest.raises(AgentArchived):
        await chat(bus, owner, agent.slug, environment="development")
