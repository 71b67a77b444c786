"""`one.agents` over the bus and over HTTP (the gateway served here): the same calls, results, events and errors.

The model is the scripted OpenAI-wire server (real HTTP) the session's agents replica is pointed at: it streams
its text word by word and asks for the tools a test prescribes, and the tool calls really reach the graph.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.contracts.agents import AgentNotFound, IterationLimit, NotDeployed, SlugTaken
from shared.kernel.errors import InvalidRequest
from shared.tools.sdk import One
from shared.tools.sdk.agents_stream import ChatEvent
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import unique

ANSWER = "the answer arrives word by word"


async def new_agent(one: One, model: str, *, deploy: bool = True, **config: object) -> str:
    slug = unique("agent")
    await one.agents.create(slug, "Helper", type="service_agent",
                            config={"model": model, "system_prompt": "Be brief.", **config})
    if deploy:
        await one.agents.deploy(slug)
    return slug


async def test_an_agent_is_created_listed_configured_deployed_and_archived(
    one: One, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"text": "ok"})
    slug = await new_agent(one, model, deploy=False)
    agent = await one.agents.get(slug)
    assert (agent.slug, agent.development.version, agent.production) == (slug, 1, None)
    assert slug in {a.slug for a in (await one.agents.list()).agents}

    configured = await one.agents.configure(slug, {"model": model, "system_prompt": "Be briefer."}, expected_version=1)
    assert configured.development.version == 2
    deployed = await one.agents.deploy(slug)
    assert deployed.production is not None and deployed.production.system_prompt == "Be briefer."
    assert sorted(c.version for c in (await one.agents.versions(slug, environment="development")).configs) == [1, 2]
    assert (await one.agents.archive(slug)).status == "archived"
    assert slug not in {a.slug for a in (await one.agents.list()).agents}

    with pytest.raises(SlugTaken):
        await one.agents.create(slug, "Again")
    with pytest.raises(AgentNotFound):
        await one.agents.get(unique("nobody"))
    if one.kind == "bus":
        assert (await one.agents.get(agent.id)).slug == slug
    else:
        with pytest.raises(InvalidRequest):  # the routes name an agent by slug
            await one.agents.get(agent.id)


async def test_a_chat_waited_for_is_the_finished_run_with_its_steps_and_conversation(
    one: One, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, script = model_server.script({"tool_calls": [("thing_create", {"type": "blog_post", "name": "By agent"})]},
                                        {"text": ANSWER})
    slug = await new_agent(one, model, tools=["thing_create"], permissions=[{"tool": "thing_create"}])
    reply = await one.agents.chat(slug, "Write a post")
    run = reply.run
    assert (run.status, run.answer, run.iterations) == ("completed", ANSWER, 2), run.error
    assert run.model.endswith(model.removeprefix("openai:"))
    assert [m["role"] for m in script.tool_results()] == ["tool"]

    assert (await one.agents.run(run.id)).answer == ANSWER
    assert run.id in {r.id for r in (await one.agents.runs(agent=slug)).runs}
    kinds = [s.kind.value for s in (await one.agents.steps(run.id)).steps]
    assert kinds[0] == "run_started" and "tool_result" in kinds and kinds[-1] == "run_finished"
    assert (await one.agents.conversation(reply.conversation_id)).id == reply.conversation_id
    said = [(m.role, m.content) for m in (await one.agents.messages(reply.conversation_id)).messages]
    assert said[0] == ("user", "Write a post") and said[-1] == ("assistant", ANSWER)

    again = await one.agents.chat(slug, "And another", thread_id=reply.conversation_id)
    assert again.conversation_id == reply.conversation_id


async def collect(events: AsyncIterator[ChatEvent]) -> list[ChatEvent]:
    return [event async for event in events]


async def test_a_streamed_chat_shows_the_tools_then_the_deltas_in_order_then_the_model(
    one: One, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]}, {"text": ANSWER})
    slug = await new_agent(one, model, tools=["thing_query"], permissions=[{"tool": "thing_query"}])
    events = await asyncio.wait_for(collect(one.agents.chat_stream(slug, "Look around")), 120)

    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished", kinds
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("text")
    texts = [e.text for e in events if e.kind == "text"]
    assert len(texts) == len(ANSWER.split(" ")) and "".join(texts) == ANSWER  # the deltas, each once, in order
    [call] = [e for e in events if e.kind == "tool_call"]
    [result] = [e for e in events if e.kind == "tool_result"]
    assert (call.tool_name, call.arguments, result.tool_name, result.is_error) == (
        "thing_query", {"limit": 1}, "thing_query", False)
    finished = events[-1]
    run = await one.agents.run(finished.run_id)
    assert {e.run_id for e in events} == {run.id} and events[0].conversation_id == run.conversation_id
    assert (finished.text, finished.model) == (ANSWER, run.model) and run.status == "completed"

    replayed = await asyncio.wait_for(collect(one.agents.follow(run.id)), 60)  # a finished run: from the store
    assert [e.kind for e in replayed if e.kind != "text"] == [k for k in kinds if k != "text"]
    assert "".join(e.text for e in replayed if e.kind == "text") == ANSWER


async def test_a_streamed_chat_refused_before_it_starts_raises_and_a_failed_run_ends_the_stream(
    one: One, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]})  # asks for tools forever
    with pytest.raises(AgentNotFound):
        await collect(one.agents.chat_stream(unique("nobody"), "Hi"))
    undeployed = await new_agent(one, model, deploy=False)
    with pytest.raises(NotDeployed):
        await collect(one.agents.chat_stream(undeployed, "Hi"))

    capped = await new_agent(one, model, tools=["thing_query"], permissions=[{"tool": "thing_query"}],
                             max_iterations=1)
    events = await asyncio.wait_for(collect(one.agents.chat_stream(capped, "Loop")), 120)
    failed = events[-1]
    assert failed.kind == "failed" and failed.error["code"] == "max_iterations", events
    with pytest.raises(IterationLimit, match=str(failed.run_id)):
        failed.raise_for_failure()
