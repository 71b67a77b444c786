"""The tool loop against a scripted model over real HTTP: built-in tools with effects in the graph and the event
log under the right org and actor, the iteration cap, a refused tool reported to the model, delegation limits,
the inference quota, and an agent of one org that cannot reach another org's data whatever the model asks."""

from typing import Any

import pytest

from shared.contracts.agents import RUN_STEPS, InferenceQuotaExceeded
from shared.contracts.graph import THING_CREATE, THING_GET, THING_QUERY
from shared.contracts.tenancy import QUOTA_SET
from shared.kernel.errors import NotFound, QuotaExceeded
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import (  # noqa: F401 (fixtures)
    chat,
    created_id,
    make_agent,
    owner,
    stranger,
    wait_events,
)
from tests.agents.scripted_model import ScriptedModel
from tests.polling import until_async
from tests.tenancy.conftest import Account

ALL = ["thing_create", "thing_get", "thing_query", "thing_update", "thing_archive", "connect", "disconnect",
       "event_emit", "event_query", "knowledge_search", "delegate"]


async def test_run_calls_builtin_tools_with_effects_under_the_callers_org_and_actor(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, script = model_server.script(
        {"tool_calls": [("thing_create", {"type": "blog_post", "name": "Written by an agent", "status": "active"})]},
        lambda body, n: {"tool_calls": [("thing_update", {"id": created_id(body), "name": "Renamed by an agent"}),
                                        ("event_emit", {"type": "content_event", "target_id": created_id(body),
                                                        "metadata": {"action": "shared"}})]},
        {"tool_calls": [("thing_query", {"type": "blog_post"})]},
        {"text": "Done: one post written."},
    )
    agent = await make_agent(bus, owner, model, tools=ALL)
    reply = await chat(bus, owner, agent.slug, "Write a post")
    run = reply.run
    assert run.status == "completed" and run.answer == "Done: one post written.", run.error
    assert run.iterations == 4 and run.model == f"{model}" and run.usage.input_tokens == 100

    posts = (await bus.request(THING_QUERY, {"type": "blog_post"}, owner.ctx)).things
    assert [p.name for p in posts] == ["Renamed by an agent"]
    wanted = ["entity_created", "content_event", "agent_completed"]  # each through its own service's outbox

    async def every_type() -> dict[str, Any]:
        found = {e.type: e for e in await wait_events(bus, owner, wanted, 1)}
        return found if found.keys() >= set(wanted) else {}

    by_type = await until_async(every_type, timeout=20)
    assert by_type["entity_created"].actor_id == owner.person_id  # the caller's identity, in the caller's org
    assert by_type["content_event"].actor_id == owner.person_id
    assert by_type["agent_completed"].metadata["runId"] == str(run.id)

    steps = (await bus.request(RUN_STEPS, {"run_id": str(run.id)}, owner.ctx)).steps
    kinds = [s.kind.value for s in steps]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("tool_call") == 4 and kinds.count("tool_result") == 4
    assert [s.seq for s in steps] == list(range(1, len(steps) + 1))


async def test_the_loop_stops_after_ten_iterations(bus: BusClient, owner: Account,
                                                   model_server: ScriptedModel) -> None:  # noqa: F811
    model, script = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]})
    agent = await make_agent(bus, owner, model, tools=["thing_query"])
    run = (await chat(bus, owner, agent.slug)).run
    assert run.status == "failed" and run.error["code"] == "max_iterations"
    assert len(script.requests) == 10 and run.iterations == 10


async def test_a_tool_the_agent_may_not_use_is_refused_and_reported_to_the_model(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    post = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Keep me", "status": "active"}, owner.ctx)
    model, script = model_server.script(
        {"tool_calls": [("thing_archive", {"id": str(post.id)}), ("thing_create", {"type": "course", "name": "C"})]},
        {"text": "I could not."})
    agent = await make_agent(bus, owner, model, tools=["thing_get", "thing_create"], permissions=[
        {"tool": "thing_*", "actions": ["read", "create"], "thing_types": ["blog_post"]}])
    run = (await chat(bus, owner, agent.slug)).run
    assert run.status == "completed"
    results = script.tool_results()
    assert all('"tool_forbidden"' in r["content"] for r in results), results
    assert (await bus.request(THING_GET, {"id": str(post.id)}, owner.ctx)).thing.status == "active"
    assert not (await bus.request(THING_QUERY, {"type": "course"}, owner.ctx)).things


async def test_an_agent_of_one_org_cannot_read_or_change_another_orgs_data(
    bus: BusClient, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    theirs = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Theirs", "status": "active"}, stranger.ctx)
    mine = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Mine", "status": "active"}, owner.ctx)
    target = str(theirs.id)
    model, script = model_server.script({"tool_calls": [
        ("thing_get", {"id": target}),
        ("thing_update", {"id": target, "name": "Hacked"}),
        ("thing_archive", {"id": target}),
        ("connect", {"from_id": str(mine.id), "to_id": target, "type": "references"}),
        ("event_query", {"target_id": target}),
        ("thing_create", {"type": "blog_post", "name": "x", "org_id": str(stranger.org_id)}),
        ("thing_query", {"type": "blog_post"}),
    ]}, {"text": "ok"})
    agent = await make_agent(bus, owner, model, tools=ALL)
    run = (await chat(bus, owner, agent.slug)).run
    assert run.status == "completed"
    results = [r["content"] for r in script.tool_results()]
    assert all('"error"' in r for r in results[:4]) and '"not_found"' in results[0] or 'thing_not_found' in results[0]
    assert '"events": []' in results[4].replace('"events":[]', '"events": []')
    assert '"error"' in results[5]  # an org_id argument is refused, never obeyed
    assert "Theirs" not in results[6]
    assert (await bus.request(THING_GET, {"id": target}, stranger.ctx)).thing.name == "Theirs"
    with pytest.raises(NotFound):
        await bus.request(THING_GET, {"id": target}, owner.ctx)


async def test_delegation_depth_three_is_refused_at_four_and_cycles_are_refused(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    slugs = [f"d{i}-{owner.org_id.hex[-8:]}" for i in range(5)]
    scripts = []
    for i, slug in enumerate(slugs):
        nxt = slugs[i + 1] if i + 1 < len(slugs) else slugs[0]
        model, script = model_server.script({"tool_calls": [("delegate", {"agent": nxt, "task": f"step {i}"})]},
                                            {"text": f"answer {i}"})
        scripts.append(script)
        await make_agent(bus, owner, model, slug=slug, tools=["delegate"])
    run = (await chat(bus, owner, slugs[0], "go")).run
    assert run.status == "completed"
    # d0 (depth 0) -> d1 (1) -> d2 (2) -> d3 (3) -> d4 would be depth 4: refused and told to d3
    assert '"delegation_refused"' in scripts[3].tool_results()[0]["content"]
    assert "depth 4" in scripts[3].tool_results()[0]["content"]
    assert not scripts[4].requests

    a, b = f"ca-{owner.org_id.hex[-8:]}", f"cb-{owner.org_id.hex[-8:]}"
    model_a, script_a = model_server.script({"tool_calls": [("delegate", {"agent": b, "task": "t"})]}, {"text": "a"})
    model_b, script_b = model_server.script({"tool_calls": [("delegate", {"agent": a, "task": "t"})]}, {"text": "b"})
    await make_agent(bus, owner, model_a, slug=a, tools=["delegate"])
    await make_agent(bus, owner, model_b, slug=b, tools=["delegate"])
    await chat(bus, owner, a, "go")
    assert "cycle" in script_b.tool_results()[0]["content"]
    events = await wait_events(bus, owner, ["task_event"], 8)
    assert {e.metadata["action"] for e in events} >= {"delegated", "completed"}


async def test_inference_quota_exceeded(bus: BusClient, owner: Account, platform: Account,  # noqa: F811
                                        model_server: ScriptedModel) -> None:
    model, script = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]}, {"text": "done"})
    agent = await make_agent(bus, owner, model, tools=["thing_query"])
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 1}, platform.ctx)
    run = (await chat(bus, owner, agent.slug)).run  # the first call takes the only unit; the second is refused
    assert run.status == "failed" and run.error["code"] == "quota_exceeded" and len(script.requests) == 1
    with pytest.raises(QuotaExceeded) as refused:
        await chat(bus, owner, agent.slug)
    assert isinstance(refused.value, InferenceQuotaExceeded) or refused.value.code == "quota_exceeded"
    assert await wait_events(bus, owner, ["inference_quota_exceeded"], 2)
