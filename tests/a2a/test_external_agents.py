"""External A2A agents against a bare a2a-sdk server of "another platform" on a real port (tests/a2a/remote_agent.py):
the card resolved, validated and kept (the credential never returned); an agent of ours delegates through the
official a2a-sdk client, streamed when the card streams and sent + polled when not; the exchange leaves its
trace (`delegated` connection, `task_event`s, `communication_event`s, all `protocol: a2a` with the platform's
name); whatever goes wrong on the remote is a typed tool error the model sees, and the run still completes."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.contracts.agents import (
    EXTERNAL_ADD,
    EXTERNAL_ARCHIVE,
    EXTERNAL_CREDENTIALS,
    EXTERNAL_GET,
    EXTERNAL_LIST,
    EXTERNAL_REFRESH,
    AgentCardInvalid,
    AgentCardUnreachable,
    ExternalAgentExists,
    ExternalAgentNotFound,
    InvalidAgentConfig,
)
from shared.contracts.graph import CONNECTION_QUERY, THING_GET
from shared.runtime.client import BusClient
from tests.a2a.remote_agent import API_KEY, PLATFORM, RemoteAgent
from tests.agents.agent_fixtures import (  # noqa: F401 (fixtures)
    chat,
    make_agent,
    owner,
    stranger,
    wait_events,
)
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account, unique


@pytest.fixture
async def streaming_remote() -> AsyncIterator[RemoteAgent]:
    remote = RemoteAgent(streaming=True)
    await remote.start()
    yield remote
    await remote.stop()


@pytest.fixture
async def plain_remote() -> AsyncIterator[RemoteAgent]:
    remote = RemoteAgent(streaming=False, name="Plain Responder")
    await remote.start()
    yield remote
    await remote.stop()


async def add(bus: BusClient, account: Account, url: str, api_key: str | None = API_KEY, **fields: Any) -> Any:
    body = {"card_url": url, "slug": unique("ext"), **({"api_key": api_key} if api_key else {}), **fields}
    return await bus.request(EXTERNAL_ADD, body, account.ctx, timeout=30)


async def delegating_agent(bus: BusClient, account: Account, model_server: ScriptedModel, slug: str,  # noqa: F811
                           task: str) -> tuple[Any, Any]:
    model, script = model_server.script({"tool_calls": [(f"a2a__{slug}", {"task": task})]}, {"text": "relayed"})
    agent = await make_agent(bus, account, model, delegates_to=[slug])
    return agent, script


def tool_result(script: Any) -> dict[str, Any]:
    return json.loads(script.tool_results()[0]["content"])


async def test_add_resolves_validates_and_keeps_the_card_never_the_key(
    bus: BusClient, owner: Account, stranger: Account, streaming_remote: RemoteAgent  # noqa: F811
) -> None:
    added = await add(bus, owner, streaming_remote.url)
    assert (added.name, added.provider, added.streaming, added.status) == ("Market Researcher", PLATFORM, True,
                                                                           "active")
    assert [s.id for s in added.skills] == ["market-research"] and added.version == "2.1.0"
    assert {i.protocol_binding for i in added.interfaces} == {"JSONRPC", "HTTP+JSON"}
    assert added.security_schemes == ["apiKey"]
    assert added.has_credentials and added.credentials_hint == f"...{API_KEY[-4:]}"
    assert API_KEY not in added.model_dump_json()
    thing = (await bus.request(THING_GET, {"id": str(added.id)}, owner.ctx)).thing
    assert thing.type == "external_agent" and thing.properties["provider"] == PLATFORM
    assert thing.properties["protocol"] == "a2a" and thing.properties["platform"] == "custom"

    fetched = await bus.request(EXTERNAL_GET, {"slug": added.slug}, owner.ctx)
    assert fetched.id == added.id and API_KEY not in fetched.model_dump_json()
    listed = await bus.request(EXTERNAL_LIST, {}, owner.ctx)
    assert added.id in [e.id for e in listed.external_agents]
    with pytest.raises(ExternalAgentNotFound):  # another org does not see it
        await bus.request(EXTERNAL_GET, {"slug": added.slug}, stranger.ctx)

    by_card = await add(bus, stranger, f"{streaming_remote.url}/.well-known/agent-card.json")  # the card's own URL
    assert by_card.name == "Market Researcher"
    with pytest.raises(ExternalAgentExists):  # the same remote twice in one org
        await add(bus, owner, streaming_remote.url)
    with pytest.raises(ExternalAgentExists):  # a slug taken
        await add(bus, owner, f"{streaming_remote.url}/.well-known/agent-card.json", slug=added.slug)

    refreshed = await bus.request(EXTERNAL_REFRESH, {"slug": added.slug}, owner.ctx, timeout=30)
    assert refreshed.name == added.name and refreshed.resolved_at > added.resolved_at and refreshed.has_credentials
    cleared = await bus.request(EXTERNAL_CREDENTIALS, {"slug": added.slug}, owner.ctx)
    assert not cleared.has_credentials and cleared.credentials_hint is None
    archived = await bus.request(EXTERNAL_ARCHIVE, {"slug": added.slug}, owner.ctx)
    assert archived.status == "archived" and archived.archived_at is not None
    assert added.id not in [e.id for e in (await bus.request(EXTERNAL_LIST, {}, owner.ctx)).external_agents]


async def test_add_refuses_what_is_no_card_and_what_does_not_answer(
    bus: BusClient, owner: Account, streaming_remote: RemoteAgent  # noqa: F811
) -> None:
    with pytest.raises(AgentCardInvalid):  # JSON, but not an agent card
        await add(bus, owner, f"{streaming_remote.url}/.well-known/not-a-card.json")
    with pytest.raises(AgentCardInvalid):  # nothing there (404)
        await add(bus, owner, f"{streaming_remote.url}/.well-known/nothing.json")
    with pytest.raises(AgentCardUnreachable):
        await add(bus, owner, "http://127.0.0.1:9/")  # nothing listens on the discard port


@pytest.mark.parametrize("remote_kind", ["streaming", "plain"])
async def test_an_agent_delegates_a_task_and_the_exchange_is_recorded(
    bus: BusClient, owner: Account, model_server: ScriptedModel, streaming_remote: RemoteAgent,  # noqa: F811
    plain_remote: RemoteAgent, remote_kind: str,
) -> None:
    remote = streaming_remote if remote_kind == "streaming" else plain_remote
    external = await add(bus, owner, remote.url)
    agent, script = await delegating_agent(bus, owner, model_server, external.slug, "fitness trends")
    run = (await chat(bus, owner, agent.slug, "research the fitness market")).run
    assert run.status == "completed" and run.answer == "relayed"
    result = tool_result(script)
    assert result["answer"] == "echo: fitness trends" and result["status"] == "completed"
    assert result["streamed"] is (remote_kind == "streaming") and result["platform"] == PLATFORM
    assert remote.received == ["fitness trends"] and API_KEY in remote.keys
    tools = [t["function"]["name"] for t in script.requests[0]["tools"]]
    assert f"a2a__{external.slug}" in tools  # offered because delegates_to names it
    described = next(t for t in script.requests[0]["tools"] if t["function"]["name"] == f"a2a__{external.slug}")
    assert "Market research" in described["function"]["description"]  # the card's skills, for the model
    assert PLATFORM in described["function"]["description"]

    events = await wait_events(bus, owner, ["task_event", "communication_event"], 4, target_id=str(external.id))
    assert all(e.metadata["protocol"] == "a2a" and e.metadata["platform"] == PLATFORM for e in events)
    assert all(e.protocol == "a2a" for e in events)
    tasks = sorted(e.metadata["action"] for e in events if e.type == "task_event")
    assert tasks == ["completed", "delegated"]
    messages = {e.metadata["direction"]: e.metadata for e in events if e.type == "communication_event"}
    assert messages["outbound"]["preview"] == "fitness trends"
    assert messages["inbound"]["preview"] == "echo: fitness trends" and messages["inbound"]["state"] == "completed"
    connections = (await bus.request(CONNECTION_QUERY, {"thing_id": str(agent.id), "direction": "out",
                                                        "types": ["delegated"]}, owner.ctx)).connections
    assert [(c.to_id, c.metadata["protocol"], c.metadata["platform"]) for c in connections] == [
        (external.id, "a2a", PLATFORM)]
    talked = (await bus.request(CONNECTION_QUERY, {"thing_id": str(agent.id), "direction": "out",
                                                   "types": ["communicated"]}, owner.ctx)).connections
    assert [(c.to_id, c.metadata["protocol"], c.metadata["messagesExchanged"]) for c in talked] == [
        (external.id, "a2a", 2)]  # the task out, the answer back
    counted = await bus.request(EXTERNAL_GET, {"slug": external.slug}, owner.ctx)
    assert (counted.messages_sent, counted.messages_received) == (1, 1) and counted.last_used_at is not None


async def test_remote_failures_are_typed_tool_errors_and_the_run_goes_on(
    bus: BusClient, owner: Account, model_server: ScriptedModel, streaming_remote: RemoteAgent  # noqa: F811
) -> None:
    wrong_key = await add(bus, owner, streaming_remote.url, api_key="not-the-key")
    agent, script = await delegating_agent(bus, owner, model_server, wrong_key.slug, "anything")
    assert (await chat(bus, owner, agent.slug, "go")).run.status == "completed"
    assert tool_result(script)["error"]["code"] == "external_agent_auth_refused"
    assert not streaming_remote.received  # refused before any task

    plain = await add(bus, owner, f"{streaming_remote.url}/.well-known/agent-card.json")
    failing = [("fail", "external_task_failed", "the remote could not do it"),
               ("ask", "external_task_failed", "which market do you mean?")]
    for task, code, said in failing:
        agent, script = await delegating_agent(bus, owner, model_server, plain.slug, task)
        assert (await chat(bus, owner, agent.slug, "go")).run.status == "completed"
        error = tool_result(script)["error"]
        assert error["code"] == code and said in json.dumps(error)  # the remote's own words reach the model
    events = await wait_events(bus, owner, ["task_event"], 2, target_id=str(plain.id),
                               metadata={"action": "failed"})
    assert {e.metadata["error"] for e in events} == {"external_task_failed"}

    slow = await add(bus, owner, streaming_remote.url + "/", timeout=1)  # same remote, other URL spelling
    agent, script = await delegating_agent(bus, owner, model_server, slow.slug, "slow")
    assert (await chat(bus, owner, agent.slug, "go")).run.status == "completed"
    assert tool_result(script)["error"]["code"] == "external_agent_unreachable"

    await streaming_remote.stop()
    agent, script = await delegating_agent(bus, owner, model_server, plain.slug, "anyone there?")
    assert (await chat(bus, owner, agent.slug, "go")).run.status == "completed"
    assert tool_result(script)["error"]["code"] == "external_agent_unreachable"


async def test_an_external_agent_is_reached_only_when_delegates_to_names_it(
    bus: BusClient, owner: Account, model_server: ScriptedModel, streaming_remote: RemoteAgent  # noqa: F811
) -> None:
    external = await add(bus, owner, streaming_remote.url)
    model, script = model_server.script({"tool_calls": [("delegate", {"agent": external.slug, "task": "t"})]},
                                        {"text": "ok"})
    agent = await make_agent(bus, owner, model, tools=["delegate"])  # no delegates_to: internal agents only
    await chat(bus, owner, agent.slug, "go")
    assert tool_result(script)["error"]["code"] == "delegation_refused" and not streaming_remote.received

    model, script = model_server.script({"tool_calls": [("delegate", {"agent": str(external.id), "task": "hi"})]},
                                        {"text": "ok"})
    agent = await make_agent(bus, owner, model, tools=["delegate"], delegates_to=[external.slug])
    await chat(bus, owner, agent.slug, "go")
    answered = tool_result(script)  # by the external agent's id, through `delegate`; the remote answers a message
    assert (answered["answer"], answered["status"], answered["task_id"]) == ("hi back", "completed", None)

    with pytest.raises(InvalidAgentConfig):  # `a2a__` is reserved for external agents' tools
        await make_agent(bus, owner, model, mcp_servers=[{"name": "a2a", "url": "http://127.0.0.1:9/mcp"}])

    await bus.request(EXTERNAL_ARCHIVE, {"slug": external.slug}, owner.ctx)
    agent, script = await delegating_agent(bus, owner, model_server, external.slug, "after archive")
    await chat(bus, owner, agent.slug, "go")
    assert tool_result(script)["error"]["code"] == "delegation_refused"  # archived: no tool offered, none run
    assert streaming_remote.received == ["hi"]


async def test_an_agent_answers_the_remote_agents_question_in_the_same_task(
    bus: BusClient, owner: Account, model_server: ScriptedModel, streaming_remote: RemoteAgent  # noqa: F811
) -> None:
    external = await add(bus, owner, streaming_remote.url)
    tool = f"a2a__{external.slug}"

    def answer(body: dict[str, Any], number: int) -> dict[str, Any]:
        asked = json.loads([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])["error"]
        return {"tool_calls": [(tool, {"task": "the fitness market", "task_id": asked["task_id"],
                                       "context_id": asked["context_id"]})]}

    model, script = model_server.script({"tool_calls": [(tool, {"task": "ask"})]}, answer, {"text": "done"})
    agent = await make_agent(bus, owner, model, delegates_to=[external.slug])
    assert (await chat(bus, owner, agent.slug, "go")).run.status == "completed"
    first, second = [json.loads(m["content"]) for m in script.requests[-1]["messages"] if m["role"] == "tool"]
    assert first["error"]["state"] == "input-required"
    assert first["error"]["remote_message"] == "which market do you mean?"
    assert second["answer"] == "echo: the fitness market" and second["task_id"] == first["error"]["task_id"]
    assert streaming_remote.received == ["ask", "the fitness market"]
