"""agents.loop.overhead: the platform's time per tool-loop iteration, beside the same calls made directly.

Tenancy, the graph and the scripted model server (OpenAI Chat Completions over real HTTP, answering at once)
run in a process of their own (`python -m tests.bench.bench_agents <nats> <db>`); the agents service and the
measuring client in this one, so the direct calls start where the service's would. An iteration is one
streamed completion asking for one `thing_get` and that tool's bus request.

- Ours: `agents.chat` runs of an agent whose model asks for `thing_get` K times, then answers; minus a run of
  the same agent that answers at once (same start and finish), divided by K. So the figure is what one iteration
  costs inside a run: context building, the inference quota, the model call, storing and publishing its steps,
  the tool's bus call with the run's auth, its result stored and published.
- Direct: the same K completions (the same growing context, streamed through the same `openai` client) and
  the same K `graph.thing.get` bus requests, made one after the other by hand, divided by K.

Rounds alternate (direct, ours, ours, direct, ...); the figure is the median of each side, the note gives the
median and quartiles of each round's ratio to the direct round beside it (the machine's load drifts during a run;
neighbours share it). Target: ours ≤ 2x direct.
"""

import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from tests.bench.harness import Figure

PREFIX = "agents.loop"
K = 9  # tool iterations per run (the tenth completion answers)
ROUNDS = 20
WARMUP = 2
SAMPLE_RATIO = 0.0


async def _direct(client: Any, bus: Any, ctx: Any, model: str, thing_id: str) -> float:
    """Seconds per iteration: K streamed completions with the growing context and K thing_get requests."""
    from services.agents.providers.openai_compat import wire_tools
    from services.agents.tools_builtin import TOOLS
    from shared.contracts.graph import THING_GET

    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful assistant."},
                                      {"role": "user", "content": "go"}]
    tools = wire_tools([TOOLS["thing_get"].tool_spec()])  # the tool exactly as the platform offers it
    started = time.perf_counter()
    for _ in range(K):
        stream = await client.chat.completions.create(model=model, messages=messages, tools=tools, stream=True,
                                                      stream_options={"include_usage": True})
        calls: dict[int, dict[str, str]] = {}
        async for chunk in stream:
            for choice in chunk.choices:
                for part in choice.delta.tool_calls or ():
                    call = calls.setdefault(part.index, {"id": "", "arguments": ""})
                    call["id"] = part.id or call["id"]
                    call["arguments"] += (part.function.arguments or "") if part.function else ""
        call = calls[0]
        found = await bus.request(THING_GET, json.loads(call["arguments"]), ctx)
        messages += [{"role": "assistant", "content": None, "tool_calls": [
                         {"id": call["id"], "type": "function",
                          "function": {"name": "thing_get", "arguments": call["arguments"]}}]},
                     {"role": "tool", "tool_call_id": call["id"], "content": found.model_dump_json()}]
    return (time.perf_counter() - started) / K


async def _run_seconds(bus: Any, ctx: Any, slug: str) -> float:
    from shared.contracts.agents import CHAT

    started = time.perf_counter()
    reply = await bus.request(CHAT, {"slug": slug, "message": "go"}, ctx, timeout=120)
    elapsed = time.perf_counter() - started
    assert reply.run.status == "completed", reply.run.error
    return elapsed


async def _ours(bus: Any, ctx: Any, looping: str, answering: str) -> float:
    """Seconds per iteration: (a run with K tool iterations - a run without) / K."""
    return (await _run_seconds(bus, ctx, looping) - await _run_seconds(bus, ctx, answering)) / K


async def serve(nats_url: str, db_url: str) -> None:
    """The other side: tenancy, the graph and the scripted model in a process of their own; an org with a thing.

    Prints `ready <model url> <owner key> <thing id> <looping model> <answering model> <direct model>`."""
    from services.graph.app import definition as graph
    from shared.contracts.graph import THING_CREATE
    from shared.contracts.tenancy import QUOTA_SET, VERIFY_KEY
    from tests.agents.scripted_model import ScriptedModel
    from tests.bench.services import start_with_tenancy

    model_server = ScriptedModel()
    await model_server.start()
    platform = await start_with_tenancy("bench-agents", graph, nats_url, db_url, SAMPLE_RATIO)
    key = await platform.new_org_key()
    ctx = (await platform.bus.request(VERIFY_KEY, {"key": key})).auth_context()
    await platform.bus.request(QUOTA_SET, {"org_id": str(ctx.org_id), "metric": "inference", "limit": 10**9},
                               platform.ctx)
    thing = await platform.bus.request(THING_CREATE, {"type": "blog_post", "name": "Read by the loop"}, ctx)
    call = {"tool_calls": [("thing_get", {"id": str(thing.id)})]}
    looping, _ = model_server.script(lambda body, n: call if n % (K + 1) else {"text": "done"})
    answering, _ = model_server.script({"text": "done"})
    direct, _ = model_server.script(call)
    print("ready", model_server.url, key, thing.id, looping, answering, direct, flush=True)
    await asyncio.Event().wait()


async def run(nats_url: str, db_url: str) -> list[Figure]:
    import openai
    from pydantic import SecretStr

    from services.agents.app import definition as agents
    from shared.contracts.agents import AGENT_CREATE, AGENT_DEPLOY
    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.client import BusClient
    from shared.runtime.service import ServiceRuntime
    from tests.bench.rr_processes import settings_for, tracing

    server = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_agents", nats_url, db_url],
                              stdout=subprocess.PIPE, text=True)
    try:
        word, model_url, key, thing_id, *models = (await asyncio.to_thread(server.stdout.readline)).split()
        assert word == "ready", word
        common = settings_for(nats_url, db_url, SAMPLE_RATIO)
        tracing("bench-agents", common)
        runtime = ServiceRuntime(agents, agents.settings(
            **common.model_dump(), agents_openai_base_url=model_url, agents_openai_api_key=SecretStr("bench"),
            agents_embed_messages=False, agents_jobs_slots=0))
        await runtime.start(migrate=False)
        bus = await BusClient.connect(common)
        client = openai.AsyncOpenAI(base_url=model_url, api_key="bench", max_retries=0)
        try:
            ctx = (await bus.request(VERIFY_KEY, {"key": key})).auth_context()
            slugs = []
            for name, model, tools in (("looping", models[0], ["thing_get"]), ("answering", models[1], [])):
                config = {"model": model, "tools": tools, "knowledge": {"enabled": False}, "max_iterations": K + 1}
                agent = await bus.request(AGENT_CREATE, {"slug": f"bench-{name}", "name": name, "config": config},
                                          ctx)
                await bus.request(AGENT_DEPLOY, {"slug": agent.slug}, ctx)
                slugs.append(agent.slug)
            samples: dict[str, list[float]] = {"direct": [], "ours": []}
            for r in range(WARMUP + ROUNDS):
                for side in (("direct", "ours") if r % 2 == 0 else ("ours", "direct")):
                    seconds = await (_direct(client, bus, ctx, models[2].removeprefix("openai:"), thing_id)
                                     if side == "direct" else _ours(bus, ctx, *slugs))
                    if r >= WARMUP:
                        samples[side].append(seconds * 1e6)
        finally:
            await client.close()
            await bus.close()
            await runtime.stop()
    finally:
        server.terminate()
        server.wait()
    ours, direct = statistics.median(samples["ours"]), statistics.median(samples["direct"])
    ratios = [o / d for o, d in zip(samples["ours"], samples["direct"], strict=True)]
    quartiles = statistics.quantiles(ratios, n=4)
    print(f"agents.loop.overhead rounds (µs/iteration) ours={[round(s) for s in samples['ours']]} "
          f"direct={[round(s) for s in samples['direct']]} paired ratios: median {statistics.median(ratios):.2f}, "
          f"quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}")
    return [Figure(f"{PREFIX}.overhead", ours, "µs/iteration", direct,
                   f"median of {ROUNDS} alternating rounds, {K} tool iterations a run (a round's ratio to its "
                   f"neighbour: median {statistics.median(ratios):.2f}, quartiles {quartiles[0]:.2f}-"
                   f"{quartiles[2]:.2f}); baseline the same streamed completions and thing_get bus requests made by "
                   "hand; target ≤2x")]


if __name__ == "__main__":
    asyncio.run(serve(*sys.argv[1:3]))
