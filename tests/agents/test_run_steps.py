"""A run's steps as a reader sees them and a run whose replicas keep dying:

- a reader that comes late (subscribes to the step subject mid-run, then reads the stored steps) gets every step
  once, in order, with no gap, and the text deltas of the answer;
- a run taken over more than `agents_max_takeovers` times fails cleanly (`orphaned`), steps kept, never resumed
  again; a replica "dies" here as a killed process would: its work stops and its lease is left to expire;
- a replica whose lease renewals stall never takes its own run over (which would run it twice);
- the OpenAI-compatible provider's non-streaming branch reads the same completion as its streaming one.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from pydantic import SecretStr

from services.agents import durability, service_runs
from services.agents.providers import openai_compat
from services.agents.providers.base import ChatMessage, ToolCall, ToolSpec
from services.agents.settings import AgentsSettings
from services.agents.state import of as state_of
from services.agents.tools_access import AGENT_GRANTS
from shared import __version__
from shared.contracts.agents import RUN_GET, RUN_STEPS, ChatRequest, RunStep
from shared.kernel.envelope import Envelope
from shared.kernel.errors import Unavailable
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime
from tests.agents.agent_fixtures import chat, make_agent, owner, wait_events  # noqa: F401
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account


async def _until(condition, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_late_reader_gets_stored_then_live_steps_without_gap_or_repeat(
    bus: BusClient, owner: Account, model_server: ScriptedModel, nc: NatsClient  # noqa: F811
) -> None:
    answer = "the answer arrives word by word"
    model, script = model_server.script(
        {"tool_calls": [("thing_query", {"limit": 1}), ("thing_query", {"limit": 2})]}, {"text": answer})
    script.gates[2] = release = asyncio.Event()
    agent = await make_agent(bus, owner, model, tools=["thing_query"])
    reply = await chat(bus, owner, agent.slug, "go", wait=False)
    assert reply.run.status == "running"
    try:
        await _until(lambda: len(script.requests) == 2)  # the first iteration's steps are stored

        live: list[RunStep] = []
        finished = asyncio.Event()

        async def receive(msg) -> None:  # noqa: ANN001
            step = RunStep.model_validate_json(msg.data)
            live.append(step)
            if step.kind in ("run_finished", "run_error"):
                finished.set()

        subscription = await nc.subscribe(reply.step_subject, cb=receive)  # subscribe first, then read
        await nc.flush()
        stored = (await bus.request(RUN_STEPS, {"run_id": str(reply.run.id)}, owner.ctx)).steps
    finally:
        release.set()
    await asyncio.wait_for(finished.wait(), 60)
    await subscription.unsubscribe()

    assert [s.kind for s in stored].count("tool_result") == 2 and "run_finished" not in [s.kind for s in stored]
    seen = stored[-1].seq
    merged = stored + [s for s in live if s.kind != "text_delta" and s.seq > seen]
    final = (await bus.request(RUN_STEPS, {"run_id": str(reply.run.id)}, owner.ctx)).steps
    assert [(s.seq, s.kind) for s in merged] == [(s.seq, s.kind) for s in final]
    assert [s.seq for s in merged] == list(range(1, len(final) + 1))
    assert "".join(s.text for s in live if s.kind == "text_delta") == answer
    assert final[-1].kind == "run_finished" and final[-1].text == answer


async def _pause_sweeps(runtime: ServiceRuntime) -> None:
    state = state_of(runtime)
    if state.leases is not None:
        state.leases.cancel()
        await asyncio.gather(state.leases, return_exceptions=True)


async def _die(runtime: ServiceRuntime) -> None:
    """What a SIGKILL leaves behind: the replica's work stops mid-call, its leases stay until they expire."""
    tasks = list(state_of(runtime).running.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _chat_on(replica: ServiceRuntime, account: Account, slug: str) -> Any:
    """A chat handled by this replica (not the session's): the run is this replica's work."""
    auth = account.ctx
    envelope = Envelope(type="agents.chat", org_id=auth.org_id, actor_id=auth.actor_id, role=auth.role,
                        permissions=auth.permissions, scopes=auth.scopes)
    return await service_runs.chat(WorkContext(envelope, None, replica), ChatRequest(slug=slug, message="go",
                                                                                     wait=False))


@pytest.fixture
async def mortal(migrated: Settings, model_server: ScriptedModel,  # noqa: F811
                 services: dict[str, ServiceRuntime]) -> AsyncIterator[ServiceRuntime]:
    """A second agents replica with a 1 s lease and one takeover allowed, that sweeps only when the test says;
    the session's replica stops sweeping meanwhile, so which replica takes a run over is the test's choice."""
    settings = AgentsSettings(**migrated.model_dump(), agents_openai_base_url=model_server.url,
                              agents_openai_api_key=SecretStr("test"), agents_lease_seconds=1.0,
                              agents_sweep_interval=3600, agents_max_takeovers=1)
    definition = ServiceDefinition("agents", __version__, ServiceRouter("agents"), settings=AgentsSettings,
                                   grants=AGENT_GRANTS, on_start=[durability.start], on_stop=[durability.stop])
    replica = ServiceRuntime(definition, settings)
    await _pause_sweeps(services["agents"])
    await replica.start(migrate=False)
    try:
        yield replica
    finally:
        await replica.stop()
        await durability.start(services["agents"])


async def test_a_run_orphaned_more_than_max_takeovers_fails_cleanly(
    bus: BusClient, owner: Account, model_server: ScriptedModel, mortal: ServiceRuntime  # noqa: F811
) -> None:
    model, script = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]}, {"text": "never"})
    held = asyncio.Event()
    script.gates.update({n: held for n in range(2, 6)})  # every completion after the first is held
    agent = await make_agent(bus, owner, model, tools=["thing_query"])
    try:
        reply = await _chat_on(mortal, owner, agent.slug)
        run_id = str(reply.run.id)
        await _until(lambda: len(script.requests) == 2)
        await _die(mortal)  # death 1, mid tool loop: iteration 1 is stored, the second completion never came
        await asyncio.sleep(1.5)
        assert await durability.sweep(mortal) >= 1  # takeover 1 (of 1 allowed): resumed from the stored steps
        await _until(lambda: len(script.requests) == 3)
        await _die(mortal)  # death 2
        await asyncio.sleep(1.5)
        assert await durability.sweep(mortal) >= 1  # takeover 2: more than allowed, so the run fails
    finally:
        held.set()

    run = await bus.request(RUN_GET, {"id": run_id}, owner.ctx)
    assert run.status == "failed" and run.error["code"] == "orphaned" and run.finished_at is not None
    assert run.resumed == 1 and len(script.requests) == 3
    kinds = [s.kind.value for s in (await bus.request(RUN_STEPS, {"run_id": run_id}, owner.ctx)).steps]
    assert kinds.count("resumed") == 1 and kinds.count("tool_result") == 1 and kinds[-1] == "run_error"
    failed = await wait_events(bus, owner, ["agent_failed"], 1, target_id=str(agent.id))
    assert [e.metadata["error"]["code"] for e in failed] == ["orphaned"]
    await durability.sweep(mortal)  # its lease went with it: nothing left to take over
    assert (await bus.request(RUN_GET, {"id": run_id}, owner.ctx)).resumed == 1


async def test_a_replica_late_to_renew_its_lease_does_not_take_its_own_run_over(
    bus: BusClient, owner: Account, model_server: ScriptedModel, mortal: ServiceRuntime  # noqa: F811
) -> None:
    model, script = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]}, {"text": "finished once"})
    script.gates[2] = release = asyncio.Event()
    agent = await make_agent(bus, owner, model, tools=["thing_query"])
    try:
        reply = await _chat_on(mortal, owner, agent.slug)
        await _until(lambda: len(script.requests) == 2)
        await _pause_sweeps(mortal)  # its renewals stall (a starved event loop) while the run goes on
        await asyncio.sleep(1.5)
        await durability.sweep(mortal)  # the lease expired, but this replica is the one working on the run
        assert reply.run.id in state_of(mortal).running
    finally:
        release.set()
    await _until(lambda: reply.run.id not in state_of(mortal).running)
    run = await bus.request(RUN_GET, {"id": str(reply.run.id)}, owner.ctx)
    assert run.status == "completed" and run.answer == "finished once" and run.resumed == 0, run.error
    assert len(script.requests) == 2


async def test_the_openai_provider_reads_the_same_completion_with_and_without_streaming(
    model_server: ScriptedModel, services: dict[str, ServiceRuntime]  # noqa: F811
) -> None:
    settings = services["agents"].settings.model_copy(update={"agents_openai_base_url": model_server.url,
                                                               "agents_openai_api_key": SecretStr("test")})
    provider = openai_compat.create(settings)
    reply = {"text": "Let me look.", "tool_calls": [("lookup", {"q": "pottery"}), ("broken", "{not json")]}
    model, script = model_server.script(reply, reply)
    name = model.removeprefix("openai:")
    context = [ChatMessage("system", "Be brief."), ChatMessage("user", "Find pottery"),
               ChatMessage("assistant", None, (ToolCall("c0", "lookup", {"q": "clay"}),)),
               ChatMessage("tool", '{"hits": []}', tool_call_id="c0", name="lookup")]
    tools = [ToolSpec("lookup", "Search.", {"type": "object", "properties": {"q": {"type": "string"}}})]

    plain = await provider.complete(name, context, tools, temperature=0.0, max_tokens=64)
    deltas: list[str] = []

    async def on_text(text: str) -> None:
        deltas.append(text)

    streamed = await provider.complete(name, context, tools, temperature=0.0, max_tokens=64, on_text=on_text)

    assert not script.requests[0].get("stream") and script.requests[1]["stream"] is True
    sent = script.requests[0]
    assert sent["messages"][2]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q": "clay"}'}
    assert sent["messages"][3] == {"role": "tool", "content": '{"hits": []}', "tool_call_id": "c0"}
    assert sent["tools"][0]["function"]["name"] == "lookup" and sent["max_tokens"] == 64
    assert plain.text == "Let me look." and plain.finish_reason == "tool_calls" and plain.model == model
    assert plain.tool_calls == (ToolCall("call_1_0", "lookup", {"q": "pottery"}),
                                ToolCall("call_1_1", "broken", {"_unparsed": "{not json"}))
    assert (plain.usage.input_tokens, plain.usage.output_tokens) == (10, 5)
    assert [c.arguments for c in streamed.tool_calls] == [c.arguments for c in plain.tool_calls]
    assert (streamed.text, streamed.finish_reason, streamed.model) == (plain.text, plain.finish_reason, plain.model)
    assert "".join(deltas) == plain.text
    with pytest.raises(Unavailable):
        await provider.complete("no-such-model", context)


async def test_a_run_that_retrieves_nothing_is_stored_with_its_context(
    bus: BusClient, owner: Account, model_server: ScriptedModel, services: dict[str, ServiceRuntime]  # noqa: F811
) -> None:
    """Knowledge off: the run's context (its first steps) is written in the transaction that starts the run, before
    the run's task does anything (here it never does: it is cancelled at once; a replica resuming it starts from
    that context)."""
    model, _ = model_server.script({"text": "done"})
    agent = await make_agent(bus, owner, model, knowledge={"enabled": False})
    replica = services["agents"]
    reply = await _chat_on(replica, owner, agent.slug)
    for task in [t for t in state_of(replica).tasks if t.get_name() == f"agents-run-{reply.run.id}"]:
        task.cancel()  # before its first step
    steps = (await bus.request(RUN_STEPS, {"run_id": str(reply.run.id)}, owner.ctx)).steps
    assert [s.kind for s in steps] == ["run_started", "retrieval"]
    assert steps[0].data["messages"][-1] == {"role": "user", "content": "go"}
