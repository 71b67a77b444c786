"""Tool permissions (seed 001): denied fields hidden from results and refused in arguments; a tool in `agent`
identity mode acts as the agent (the agent is the actor of what it writes), one in `caller` mode as the person;
and a customer (seeds 001/003: an org's audience chats with its agents) may run an agent and nothing more."""

import json

import pytest

from shared.contracts.agents import AGENT_CONFIGURE, RUN_LIST, RUN_STEPS
from shared.contracts.graph import THING_CREATE, THING_GET
from shared.kernel.errors import Forbidden, NotFound
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import (  # noqa: F401 (fixtures)
    chat,
    created_id,
    make_agent,
    owner,
    wait_events,
)
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account, add_member


async def test_denied_fields_are_masked_in_results_and_refused_in_arguments(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    properties = {"email": "ada@example.test", "score": 7, "contact": {"email": "nested@example.test", "city": "Lyon"}}
    lead = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Lead post", "status": "active",
                                            "properties": properties}, owner.ctx)
    target = str(lead.id)
    model, script = model_server.script({"tool_calls": [
        ("thing_get", {"id": target}),
        ("thing_query", {"type": "blog_post"}),
        ("thing_update", {"id": target, "properties": {"email": "evil@example.test"}}),
        ("thing_query", {"where": [{"path": "email", "op": "exists"}]}),
        ("thing_update", {"id": target, "properties": {"score": 8}}),
    ]}, {"text": "done"})
    agent = await make_agent(bus, owner, model, tools=["thing_get", "thing_query", "thing_update"],
                             permissions=[{"tool": "thing_*", "denied_fields": ["email"]}])
    run = (await chat(bus, owner, agent.slug)).run
    assert run.status == "completed", run.error

    results = [r["content"] for r in script.tool_results()]
    seen = json.loads(results[0])
    assert seen["thing"]["properties"] == {"score": 7, "contact": {"city": "Lyon"}}  # masked at any depth
    assert "example.test" not in results[1] and '"score": 7' in results[1]
    for refused in (json.loads(results[2]), json.loads(results[3])):
        assert refused["error"]["code"] == "tool_forbidden" and refused["error"]["fields"] == ["email"]
    assert json.loads(results[4])["properties"] == {"score": 8, "contact": {"city": "Lyon"}}

    stored = (await bus.request(THING_GET, {"id": target}, owner.ctx)).thing.properties
    assert stored["email"] == "ada@example.test" and stored["score"] == 8  # the refused update changed nothing
    steps = (await bus.request(RUN_STEPS, {"run_id": str(run.id)}, owner.ctx)).steps
    assert "ada@example.test" not in json.dumps([s.result for s in steps if s.kind == "tool_result"])


async def test_agent_identity_makes_the_agent_the_actor_and_caller_identity_the_person(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    post = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Draft", "status": "active"}, owner.ctx)
    target = str(post.id)
    model, _ = model_server.script(
        {"tool_calls": [("thing_update", {"id": target, "name": "Edited by the agent"}),
                        ("event_emit", {"type": "content_event", "target_id": target,
                                        "metadata": {"action": "shared"}})]},
        {"text": "done"})
    agent = await make_agent(bus, owner, model, tools=["thing_update", "event_emit"], permissions=[
        {"tool": "thing_update", "actions": ["update"], "identity": "agent"},
        {"tool": "event_emit", "actions": ["create"], "identity": "caller"},
    ])
    run = (await chat(bus, owner, agent.slug)).run
    assert run.status == "completed" and run.actor_id == owner.person_id, run.error

    updated = await wait_events(bus, owner, ["entity_updated"], 1, target_id=target)
    assert [e.actor_id for e in updated] == [agent.id]  # the agent changed it
    shared = await wait_events(bus, owner, ["content_event"], 1, target_id=target)
    assert [e.actor_id for e in shared] == [owner.person_id]  # the person did, through the agent


async def test_agent_identity_can_create_things(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, script = model_server.script(
        {"tool_calls": [("thing_create", {"type": "blog_post", "name": "By the agent", "status": "active"})]},
        {"text": "done"})
    agent = await make_agent(bus, owner, model, tools=["thing_create"],
                             permissions=[{"tool": "thing_create", "identity": "agent"}])
    await chat(bus, owner, agent.slug)
    created = await wait_events(bus, owner, ["entity_created"], 1, target_id=created_id(script.requests[1]))
    assert [e.actor_id for e in created] == [agent.id]


async def test_a_customer_may_chat_with_an_agent_and_nothing_more(
    bus: BusClient, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    customer = await add_member(bus, owner, role="customer")
    lead = await bus.request(THING_CREATE, {"type": "lead", "name": "Visitor", "status": "active"}, owner.ctx)
    target = str(lead.id)
    model, script = model_server.script(
        {"tool_calls": [("thing_update", {"id": target, "properties": {"interest": "pottery"}}),
                        ("thing_archive", {"id": target})]},
        {"text": "Thanks, we will be in touch."},
        {"text": "Still here."})
    agent = await make_agent(bus, owner, model, tools=["thing_update", "thing_archive"], permissions=[
        {"tool": "thing_update", "actions": ["update"], "identity": "agent", "thing_types": ["lead"]},
        {"tool": "thing_archive", "actions": ["archive"]},  # as the caller: a customer may not
    ])
    reply = await chat(bus, customer, agent.slug, "I am interested in your pottery course")
    assert reply.run.status == "completed" and reply.run.actor_id == customer.person_id, reply.run.error
    results = [json.loads(r["content"]) for r in script.tool_results()]
    assert "error" not in results[0] and results[1]["error"]["code"] == "forbidden"
    found = (await bus.request(THING_GET, {"id": target}, owner.ctx)).thing
    assert found.properties["interest"] == "pottery" and found.status == "active"

    again = await chat(bus, customer, agent.slug, "Are you there?", thread_id=str(reply.conversation_id))
    assert again.run.status == "completed" and again.conversation_id == reply.conversation_id

    with pytest.raises(Forbidden):
        await bus.request(RUN_LIST, {}, customer.ctx)
    with pytest.raises(Forbidden):
        await bus.request(AGENT_CONFIGURE, {"slug": agent.slug, "config": {"model": model}}, customer.ctx)
    theirs = await chat(bus, owner, agent.slug, "A conversation of the owner's")
    with pytest.raises(NotFound):  # another person's conversation: not the customer's to read or write
        await chat(bus, customer, agent.slug, "Tell me what was said here", thread_id=str(theirs.conversation_id))
