"""What a plugin gives besides HTTP actions: thing types' property schemas set in the org while it is installed
(a create violating one is refused, gone after uninstall), and MCP servers whose tools an agent of the org calls
over real Streamable HTTP while the install is active (not once deactivated or uninstalled)."""

import json

import pytest

from shared.contracts.agents.plugins import (
    PLUGIN_ACTIVATE,
    PLUGIN_DEACTIVATE,
    PLUGIN_GET,
    PLUGIN_INSTALL,
    PLUGIN_INSTANCE,
    PLUGIN_UNINSTALL,
    PluginRegistryInvalid,
)
from shared.contracts.graph import THING_CREATE, THING_DELETE
from shared.kernel.errors import InvalidRequest
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import chat, make_agent  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.agents.test_custom_tools import McpCalculator, mcp_server  # noqa: F401 (fixtures)
from tests.plugins.plugin_fixtures import Account, entry, import_entries, owner, unique  # noqa: F401

PRODUCT = {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string", "pattern": "^[A-Z]+-\\d+$"}}}


@pytest.mark.parametrize(("one", "field"), [
    ({"thing_types": {"no_such_type": {"type": "object"}}}, "one.thing_types.no_such_type"),
    ({"thing_types": {"product": {"type": "no-such-json-type"}}}, "one.thing_types.product"),
    ({"mcp_servers": [{"name": "calc", "url": "ftp://example.test/mcp"}]}, "one.mcp_servers[0].url"),
    ({"mcp_servers": [{"name": "a__b", "url": "http://example.test/mcp"}]}, "one.mcp_servers[0].name"),
])
async def test_bad_gives_are_refused_at_import_naming_the_entry(bus: BusClient, platform: Account,  # noqa: F811
                                                               one: dict, field: str) -> None:
    name = unique("test-gives-bad")
    with pytest.raises(PluginRegistryInvalid) as refused:
        await import_entries(bus, platform, {name: entry("1.0.0", **one)})
    assert refused.value.details == {"entry": name, "field": field}


async def test_thing_type_schemas_while_installed(bus: BusClient, platform: Account, owner: Account) -> None:  # noqa: F811
    name = unique("test-shop")
    await import_entries(bus, platform, {name: entry("1.0.0", thing_types={"product": PRODUCT})})
    assert (await bus.request(PLUGIN_GET, {"name": name}, owner.ctx)).thing_types == ["product"]
    await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)

    with pytest.raises(InvalidRequest) as refused:
        await bus.request(THING_CREATE, {"type": "product", "name": "No SKU", "properties": {}}, owner.ctx)
    assert refused.value.code == "invalid_properties"
    with pytest.raises(InvalidRequest):
        await bus.request(THING_CREATE, {"type": "product", "name": "Bad SKU", "properties": {"sku": "x"}}, owner.ctx)
    made = await bus.request(THING_CREATE, {"type": "product", "name": "Lamp", "properties": {"sku": "LMP-1"}},
                             owner.ctx)

    await bus.request(THING_DELETE, {"id": str(made.id)}, owner.ctx)  # no live product left to govern
    gone = await bus.request(PLUGIN_UNINSTALL, {"name": name}, owner.ctx, timeout=60)
    assert [(s["type"], s["outcome"]) for s in gone.type_schemas] == [("product", "removed")]
    await bus.request(THING_CREATE, {"type": "product", "name": "Free", "properties": {}}, owner.ctx)


async def test_uninstall_keeps_a_schema_live_things_follow(bus: BusClient, platform: Account,  # noqa: F811
                                                          owner: Account) -> None:  # noqa: F811
    name = unique("test-shop")
    await import_entries(bus, platform, {name: entry("1.0.0", thing_types={"product": PRODUCT})})
    await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
    await bus.request(THING_CREATE, {"type": "product", "name": "Lamp", "properties": {"sku": "LMP-1"}}, owner.ctx)
    gone = await bus.request(PLUGIN_UNINSTALL, {"name": name}, owner.ctx, timeout=60)
    kept = gone.type_schemas[0]
    assert kept["outcome"] == "kept" and kept["live_things"] == 1 and "live" in kept["reason"]


async def test_an_agent_calls_a_plugins_mcp_tool_while_it_is_active(
    bus: BusClient, platform: Account, owner: Account, model_server: ScriptedModel,  # noqa: F811
    mcp_server: tuple[McpCalculator, str],  # noqa: F811
) -> None:
    calculator, url = mcp_server
    name = unique("test-mcp")
    tool = f"plugin__{name}__calc__add"
    await import_entries(bus, platform, {name: entry("1.0.0", mcp_servers=[{"name": "calc", "url": url}])})
    assert (await bus.request(PLUGIN_GET, {"name": name}, owner.ctx)).mcp_servers == ["calc"]
    await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
    await bus.request(PLUGIN_ACTIVATE, {"name": name}, owner.ctx, timeout=90)

    model, script = model_server.script({"tool_calls": [(tool, {"a": 2, "b": 40})]}, {"text": "42"})
    agent = await make_agent(bus, owner, model, tools=[tool, f"plugin__{name}__calc__wipe_not_offered"])
    run = (await chat(bus, owner, agent.slug, "2 + 40?")).run
    assert run.status == "completed" and run.answer == "42", run.error
    assert {t["function"]["name"] for t in script.requests[0]["tools"]} == {tool}  # the server has no such tool
    assert json.loads(script.tool_results()[0]["content"]) == {"result": 42}
    assert calculator.calls == ["add"]
    assert (await bus.request(PLUGIN_INSTANCE, {"name": name}, owner.ctx)).executions == 1

    await bus.request(PLUGIN_DEACTIVATE, {"name": name}, owner.ctx)
    model, script = model_server.script({"tool_calls": [(tool, {"a": 1, "b": 1})]}, {"text": "Cannot."})
    agent = await make_agent(bus, owner, model, tools=[tool])
    run = (await chat(bus, owner, agent.slug, "1 + 1?")).run
    assert run.status == "completed", run.error
    assert tool not in {t["function"]["name"] for t in script.requests[0].get("tools") or []}
    assert json.loads(script.tool_results()[0]["content"])["error"]["code"] == "plugin_state_conflict"

    await bus.request(PLUGIN_UNINSTALL, {"name": name}, owner.ctx, timeout=60)
    model, script = model_server.script({"tool_calls": [(tool, {"a": 1, "b": 1})]}, {"text": "Gone."})
    agent = await make_agent(bus, owner, model, tools=[tool])
    run = (await chat(bus, owner, agent.slug, "1 + 1?")).run
    assert json.loads(script.tool_results()[0]["content"])["error"]["code"] == "plugin_state_conflict"
    assert calculator.calls == ["add"]


async def test_a_failing_mcp_server_counts_toward_suspension(bus: BusClient, platform: Account,  # noqa: F811
                                                             owner: Account,  # noqa: F811
                                                             model_server: ScriptedModel) -> None:  # noqa: F811
    name = unique("test-mcp-down")
    tool = f"plugin__{name}__calc__add"
    await import_entries(bus, platform, {name: entry("1.0.0", mcp_servers=[
        {"name": "calc", "url": "http://127.0.0.1:9/mcp"}])})  # the discard port: nothing answers
    await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
    await bus.request(PLUGIN_ACTIVATE, {"name": name}, owner.ctx, timeout=90)
    instance = await bus.request(PLUGIN_INSTANCE, {"name": name}, owner.ctx)
    assert instance.consecutive_failures == 0

    model, script = model_server.script({"tool_calls": [(tool, {"a": 1, "b": 1})]}, {"text": "Down."})
    agent = await make_agent(bus, owner, model, tools=[tool])
    run = (await chat(bus, owner, agent.slug, "1 + 1?")).run
    assert run.status == "completed", run.error
    error = json.loads(script.tool_results()[0]["content"])["error"]
    assert error["code"] == "plugin_action_failed", error
    assert "calc__add failed: the MCP server 'calc'" in error["message"], error
    instance = await bus.request(PLUGIN_INSTANCE, {"name": name}, owner.ctx)
    assert instance.consecutive_failures == 1 and instance.status == "active"
