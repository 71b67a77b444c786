"""What a run tells the model, read from the requests the scripted server received: the system prompt, the agent's
prompts rendered with the chat's variables (only the chat's ELEVATE step when it names one), knowledge retrieved
within the agent's scope as numbered excerpts kept as citations, and the conversation's earlier turns. Then what
runs cost, per org: executions listed and summed by model and by agent."""

import pytest

from shared.contracts.agents import (
    EXECUTION_LIST,
    EXECUTION_STATS,
    PROMPT_ATTACH,
    PROMPT_CREATE,
    PROMPT_DETACH,
    PROMPT_RENDER,
    PromptNotFound,
)
from shared.contracts.graph import THING_CREATE
from shared.contracts.knowledge import ITEM_ADD
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.agents.agent_fixtures import chat, make_agent, owner, stranger  # noqa: F401
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account


def _system(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "system"]


async def test_prompts_knowledge_and_history_make_the_models_context(
    bus: BusClient, owner: Account, stranger: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    hook = await bus.request(PROMPT_CREATE, {"name": "Hook", "step": "hook",
                                             "template": "Greet {{ name }} and mention {{topic}}."}, owner.ctx)
    sell = await bus.request(PROMPT_CREATE, {"name": "Sell", "step": "sell", "template": "Offer {{product}}."},
                             owner.ctx)
    assert hook.variables == ["name", "topic"]
    rendered = await bus.request(PROMPT_RENDER, {"id": str(hook.id), "variables": {"name": "Ada"}}, owner.ctx)
    assert rendered.text == "Greet Ada and mention ." and rendered.missing == ["topic"]
    with pytest.raises(PromptNotFound):
        await bus.request(PROMPT_RENDER, {"id": str(hook.id)}, stranger.ctx)

    source = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Pottery 101", "status": "active"},
                               owner.ctx)
    await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "source_thing_id": str(source.id),
                                 "text": "Pottery 101 costs 120 euros and starts on the first Monday of March."},
                      owner.ctx, timeout=60)
    await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": "Outside the scope: the pottery kiln is 1200 C."},
                      owner.ctx, timeout=60)
    model, script = model_server.script({"text": "It costs 120 euros [1]."}, {"text": "You are welcome."})
    agent = await make_agent(bus, owner, model, system_prompt="You sell courses.",
                             knowledge={"source_thing_ids": [str(source.id)], "k": 2})
    for prompt in (hook, sell):
        await bus.request(PROMPT_ATTACH, {"slug": agent.slug, "prompt_id": str(prompt.id)}, owner.ctx)

    first = await chat(bus, owner, agent.slug, "How much is the pottery course?", step="hook",
                       variables={"name": "Ada", "topic": "pottery"})
    assert first.run.status == "completed", first.run.error
    system = _system(script.requests[0])
    assert system[0] == "You sell courses."
    assert system[1] == "[hook] Greet Ada and mention pottery."  # only the chat's step
    assert not any("Offer" in s for s in system)
    knowledge = next(s for s in system if s.startswith("Knowledge from the organization"))
    citations = first.run.citations  # the post's own ingested text may be cited beside the item
    assert [c.index for c in citations] == list(range(1, len(citations) + 1))
    assert all(c.source_thing_id == source.id and f"[{c.index}] {c.excerpt}" in knowledge for c in citations)
    assert any(c.excerpt.startswith("Pottery 101 costs 120 euros") for c in citations)
    assert "kiln" not in knowledge  # retrieval stays within the agent's scope
    assert script.requests[0]["messages"][-1] == {"role": "user", "content": "How much is the pottery course?"}

    await bus.request(PROMPT_DETACH, {"slug": agent.slug, "prompt_id": str(hook.id)}, owner.ctx)
    second = await chat(bus, owner, agent.slug, "Thanks!", thread_id=str(first.conversation_id),
                        variables={"product": "the glazing workshop"})
    assert second.run.status == "completed", second.run.error
    system = _system(script.requests[1])
    assert "[sell] Offer the glazing workshop." in system and not any(s.startswith("[hook]") for s in system)
    turns = [(m["role"], m["content"]) for m in script.requests[1]["messages"] if m["role"] != "system"]
    assert turns == [("user", "How much is the pottery course?"), ("assistant", "It costs 120 euros [1]."),
                     ("user", "Thanks!")]


async def test_executions_are_listed_and_summed_per_org(
    bus: BusClient, owner: Account, stranger: Account, model_server: ScriptedModel,  # noqa: F811
    services: dict[str, ServiceRuntime],
) -> None:
    model_a, _ = model_server.script({"text": "a"})
    model_b, _ = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]}, {"text": "b"})
    prices = services["agents"].settings.agents_model_prices
    prices[model_a] = (2.0, 10.0)  # USD per million input / output tokens, for this test's model only
    agent_a = await make_agent(bus, owner, model_a)
    agent_b = await make_agent(bus, owner, model_b, tools=["thing_query"])
    runs = [(await chat(bus, owner, agent_a.slug)).run, (await chat(bus, owner, agent_a.slug)).run,
            (await chat(bus, owner, agent_b.slug)).run]
    other = (await chat(bus, stranger, (await make_agent(bus, stranger, model_a)).slug)).run
    prices.pop(model_a)
    assert all(r.status == "completed" for r in runs), [r.error for r in runs]

    # the scripted server counts 10 input tokens per call number of a model and 5 output tokens per call
    executions = (await bus.request(EXECUTION_LIST, {}, owner.ctx)).executions
    assert [e.run_id for e in executions] == [r.id for r in runs]
    assert [(e.model, e.input_tokens, e.output_tokens) for e in executions] == [
        (model_a, 10, 5), (model_a, 20, 5), (model_b, 10 + 20, 10)]
    assert executions[0].cost == pytest.approx((10 * 2.0 + 5 * 10.0) / 1e6) and executions[2].cost == 0
    assert all(e.latency_ms > 0 and e.status == "completed" for e in executions)
    only_b = (await bus.request(EXECUTION_LIST, {"agent": agent_b.slug}, owner.ctx)).executions
    assert [e.run_id for e in only_b] == [runs[2].id]

    stats = await bus.request(EXECUTION_STATS, {}, owner.ctx)
    assert (stats.total.runs, stats.total.failed, stats.total.input_tokens, stats.total.output_tokens) == (3, 0, 60, 20)
    assert stats.total.cost == pytest.approx((30 * 2.0 + 10 * 10.0) / 1e6)
    assert stats.by_model[model_a].runs == 2 and stats.by_model[model_b].input_tokens == 30
    assert stats.by_agent[agent_b.slug].output_tokens == 10 and stats.by_agent[agent_a.slug].runs == 2
    theirs = await bus.request(EXECUTION_STATS, {}, stranger.ctx)
    assert theirs.total.runs == 1 and [e.run_id for e in (await bus.request(EXECUTION_LIST, {}, stranger.ctx))
                                         .executions] == [other.id]
