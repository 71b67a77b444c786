"""a2a.send.*: an A2A `SendMessage` (JSON-RPC, blocking) to a published agent through the gateway, beside a bare
a2a-sdk server, same run.

Ours: the gateway's A2A server (key check, the SDK's dispatcher, `a2a.message.send` to the agents service) and a
whole agent run: the task and the run stored, a conversation thing made in the graph, the inference quota, one
streamed completion of the scripted model (OpenAI wire over real HTTP, answering at once), the run finished and
its events written. Bare: a2a-sdk's own server parts (`DefaultRequestHandler`, an in-memory task store, its
JSON-RPC route) around an executor that answers at once with an artifact, served by the same uvicorn settings.

Processes: tenancy, the graph and the scripted model (`python -m tests.bench.bench_a2a services ...`); the
gateway and the bare server (`... http ...`); the agents service and the measuring client here (httpx, keep-alive,
the same JSON-RPC body to both). Rounds alternate (bare, ours); the best of each is kept.
Targets: p50 ≤ 2x, throughput (16 in flight) ≥ 0.5x.
"""

import asyncio
import subprocess
import sys
import uuid
from typing import Any

from tests.bench.bench_gateway import _ready
from tests.bench.harness import Figure, latencies, percentile, throughput
from tests.bench.rr_processes import settings_for, tracing

PREFIX = "a2a.send"
N_LATENCY = 150
N_THROUGHPUT = 300
IN_FLIGHT = 16
WARMUP = 10
ROUNDS = 2
SAMPLE_RATIO = 0.0


async def serve_services(nats_url: str, db_url: str) -> None:
    """Tenancy, the graph and the scripted model; an org without rate or inference limits.

    Prints `ready <model url> <owner key> <model>`."""
    from services.graph.app import definition as graph
    from shared.contracts.tenancy import QUOTA_SET, RATE_SET, VERIFY_KEY
    from tests.agents.scripted_model import ScriptedModel
    from tests.bench.services import start_with_tenancy

    model_server = ScriptedModel()
    await model_server.start()
    platform = await start_with_tenancy("bench-a2a", graph, nats_url, db_url, SAMPLE_RATIO)
    key = await platform.new_org_key()
    owner = (await platform.bus.request(VERIFY_KEY, {"key": key})).auth_context()
    await platform.bus.request(RATE_SET, {"scope": "org", "max_calls": 1_000_000_000, "window_seconds": 60}, owner)
    await platform.bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 10**9},
                               platform.ctx)
    model, _ = model_server.script({"text": "done"})
    print("ready", model_server.url, key, model, flush=True)
    await asyncio.Event().wait()


def bare_app() -> Any:
    """a2a-sdk's server parts with an in-memory task store and an executor that answers at once."""
    from a2a.helpers import new_task_from_user_message, new_text_part
    from a2a.server.agent_execution import AgentExecutor
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_jsonrpc_routes
    from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
    from a2a.server.tasks.task_updater import TaskUpdater
    from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface
    from starlette.applications import Starlette

    class Instant(AgentExecutor):
        async def execute(self, context: Any, queue: Any) -> None:
            task = context.current_task or new_task_from_user_message(context.message)
            await queue.enqueue_event(task)
            updater = TaskUpdater(queue, task.id, task.context_id)
            await updater.add_artifact([new_text_part("done")], name="answer", last_chunk=True)
            await updater.complete()

        async def cancel(self, context: Any, queue: Any) -> None:
            raise NotImplementedError

    card = AgentCard(name="bare", description="bare", version="1", capabilities=AgentCapabilities(streaming=True),
                     supported_interfaces=[AgentInterface(url="http://bare", protocol_binding="JSONRPC",
                                                          protocol_version="1.0")])
    handler = DefaultRequestHandler(agent_executor=Instant(), task_store=InMemoryTaskStore(), agent_card=card)
    return Starlette(routes=create_jsonrpc_routes(handler, "/"))


async def serve_http(nats_url: str, db_url: str) -> None:
    from services.gateway.api import create_app
    from services.gateway.server import serve
    from services.gateway.settings import GatewaySettings
    from shared.runtime.client import BusClient
    from shared.runtime.service import settle_collector

    settings = settings_for(nats_url, db_url, SAMPLE_RATIO)
    tracing("bench-a2a-http", settings)
    bus = await BusClient.connect(settings)
    gateway = create_app(bus, GatewaySettings(**settings.model_dump(), gateway_access_log=False))
    ours, bare = await serve(gateway, "127.0.0.1", 0), await serve(bare_app(), "127.0.0.1", 0)
    settle_collector()  # as a gateway process does once started (both apps are served by this one)
    print("ready", ours.url, bare.url, flush=True)
    await asyncio.Event().wait()


async def _measure(url: str, headers: dict[str, str]) -> dict[str, float]:
    import httpx

    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(headers={"A2A-Version": "1.0", **headers}, limits=limits, timeout=60) as client:

        async def call() -> object:
            body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
                "messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": "go"}]}}}
            response = await client.post(url, json=body)
            answer = response.json()
            state = answer.get("result", {}).get("task", {}).get("status", {}).get("state")
            if response.status_code != 200 or state != "TASK_STATE_COMPLETED":
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:500]}")
            return answer

        samples = await latencies(call, N_LATENCY, warmup=WARMUP)
        return {"p50": percentile(samples, 0.5), "throughput": await throughput(call, N_THROUGHPUT, IN_FLIGHT)}


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.bench_a2a", *args], stdout=subprocess.PIPE, text=True)


async def run(nats_url: str, db_url: str) -> list[Figure]:
    from pydantic import SecretStr

    from services.agents.app import definition as agents
    from shared.contracts.agents import AGENT_CREATE, AGENT_DEPLOY
    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.client import BusClient
    from shared.runtime.service import ServiceRuntime

    services = _spawn("services", nats_url, db_url)
    try:
        model_url, key, model = await _ready(services)
        common = settings_for(nats_url, db_url, SAMPLE_RATIO)
        tracing("bench-a2a", common)
        runtime = ServiceRuntime(agents, agents.settings(
            **common.model_dump(), agents_openai_base_url=model_url, agents_openai_api_key=SecretStr("bench"),
            agents_embed_messages=False, agents_jobs_slots=0))
        await runtime.start(migrate=False)
        http = _spawn("http", nats_url, db_url)
        bus = await BusClient.connect(common)
        try:
            owner = (await bus.request(VERIFY_KEY, {"key": key})).auth_context()
            config = {"model": model, "knowledge": {"enabled": False}}
            await bus.request(AGENT_CREATE, {"slug": "bench-a2a", "name": "A2A bench", "config": config}, owner)
            await bus.request(AGENT_DEPLOY, {"slug": "bench-a2a"}, owner)
            gateway_url, bare_url = await _ready(http)
            ours_url = f"{gateway_url}/a2a/{owner.org_id}/bench-a2a"
            ours, bare = [], []
            for _ in range(ROUNDS):
                bare.append(await _measure(bare_url + "/", {}))
                ours.append(await _measure(ours_url, {"Authorization": f"Bearer {key}"}))
        finally:
            await bus.close()
            http.terminate()
            http.wait()
            await runtime.stop()
    finally:
        services.terminate()
        services.wait()
    p50 = min(r["p50"] for r in ours), min(r["p50"] for r in bare)
    rate = max(r["throughput"] for r in ours), max(r["throughput"] for r in bare)
    note = f"JSON-RPC SendMessage, blocking; best of {ROUNDS} alternating rounds; ours a whole agent run"
    return [
        Figure(f"{PREFIX}.p50", p50[0], "µs", p50[1], f"sequential; baseline bare a2a-sdk server; target ≤2×; {note}"),
        Figure(f"{PREFIX}.throughput16", rate[0], "req/s", rate[1], f"{IN_FLIGHT} in flight; target ≥0.5×; {note}"),
    ]


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    asyncio.run(serve_services(*args) if command == "services" else serve_http(*args))
