"""An active plugin's actions as agent tools: offered under `plugin__<name>__<action>` with the action's schema,
called by a run over real HTTP (signed with the install's sealed secret), refused once the plugin is not active."""

import json

from shared.contracts.agents.plugins import PLUGIN_ACTIVATE, PLUGIN_CONFIGURE, PLUGIN_DEACTIVATE, PLUGIN_INSTALL
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import chat, make_agent  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.plugins.plugin_fixtures import (  # noqa: F401 (fixtures)
    GEOCODING,
    WEATHER,
    Account,
    Endpoint,
    endpoint,
    owner,
    sample,
    unique,
)

TOOL = "plugin__weather__forecast"
API_KEY = "agent-" + unique("key")


async def test_an_agent_calls_an_active_plugins_action(bus: BusClient, sample, owner: Account,  # noqa: F811
                                                       endpoint: Endpoint,  # noqa: F811
                                                       model_server: ScriptedModel) -> None:  # noqa: F811
    await bus.request(PLUGIN_INSTALL, {"name": WEATHER}, owner.ctx, timeout=60)
    url = endpoint.server.url
    await bus.request(PLUGIN_CONFIGURE, {"name": GEOCODING, "settings": {"baseUrl": url}}, owner.ctx)
    await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {"baseUrl": url, "apiKey": API_KEY}}, owner.ctx)
    await bus.request(PLUGIN_ACTIVATE, {"name": WEATHER}, owner.ctx, timeout=90)

    model, script = model_server.script({"tool_calls": [(TOOL, {"city": "Quito"}), (TOOL, {"days": 2})]},
                                        {"text": "Sun, then rain."})
    agent = await make_agent(bus, owner, model, tools=[TOOL])
    run = (await chat(bus, owner, agent.slug, "Weather in Quito?")).run
    assert run.status == "completed" and run.answer == "Sun, then rain.", run.error

    offered = next(t for t in script.requests[0]["tools"] if t["function"]["name"] == TOOL)
    assert offered["function"]["parameters"]["required"] == ["city"]
    assert [c["body"] for c in endpoint.calls] == [{"city": "Quito"}]  # the call without a city never left
    assert endpoint.signed_with(API_KEY, endpoint.calls[0])
    results = [json.loads(r["content"]) for r in script.tool_results()]
    assert results[0] == {"city": "Quito", "forecast": ["sun", "rain"]}
    assert results[1]["error"]["code"] == "invalid"
    assert API_KEY not in json.dumps(script.requests)  # the model never sees the secret

    await bus.request(PLUGIN_DEACTIVATE, {"name": WEATHER}, owner.ctx)
    model, script = model_server.script({"tool_calls": [(TOOL, {"city": "Lima"})]}, {"text": "No weather today."})
    agent = await make_agent(bus, owner, model, tools=[TOOL])
    run = (await chat(bus, owner, agent.slug, "Weather in Lima?")).run
    assert run.status == "completed", run.error
    assert TOOL not in {t["function"]["name"] for t in script.requests[0].get("tools") or []}  # not offered
    assert json.loads(script.tool_results()[0]["content"])["error"]["code"] == "plugin_state_conflict"
    assert len(endpoint.calls) == 1
