"""gateway.*: an authenticated `GET /v1/things/{id}` through the gateway vs a bare Starlette route, same run.

Three processes: the services (tenancy and graph), the HTTP side (`python -m tests.bench.bench_gateway
http ...`: the gateway app and the bare app, each served by `services.gateway.server.serve`, so both
run uvicorn with the same settings on the same uvloop), and this one, the client (httpx, keep-alive,
64 in flight for throughput). The bare route makes the same bus request (`graph.thing.get`) with a
fixed auth context and returns the reply's JSON: no key check, no rate windows, no validation, no
middleware. The gateway pays all of those (its key cache warm), at the same 10% trace sampling. The
two are measured in alternating rounds; the best of each is kept. The org's rate window is raised
first, or the starter plan's 600 calls a minute would answer 429.
"""

import asyncio
import subprocess
import sys

from tests.bench.harness import Figure, request_reply_figures
from tests.bench.rr_processes import IN_FLIGHT, settings_for, tracing

PREFIX = "gateway"
N_LATENCY = 1500
N_THROUGHPUT = 4000
ROUNDS = 2
SAMPLE_RATIO = 0.1


async def serve_services(nats_url: str, db_url: str) -> None:
    """Tenancy and graph, an org whose owner's key may call without limit, and one thing of it."""
    from services.graph.app import definition
    from shared.contracts.graph import THING_CREATE
    from shared.contracts.tenancy import RATE_SET, VERIFY_KEY
    from tests.bench.services import start_with_tenancy

    platform = await start_with_tenancy("graph", definition, nats_url, db_url, SAMPLE_RATIO)
    key = await platform.new_org_key()
    owner = (await platform.bus.request(VERIFY_KEY, {"key": key})).auth_context()
    await platform.bus.request(RATE_SET, {"scope": "org", "max_calls": 1_000_000_000, "window_seconds": 60}, owner)
    thing = await platform.bus.request(THING_CREATE, {"type": "blog_post", "name": "bench"}, owner)
    print("ready", key, thing.id, flush=True)
    await asyncio.Event().wait()


async def serve_http(nats_url: str, db_url: str, key: str) -> None:
    """The gateway and the bare route, each on its own port, on this process's loop."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from services.gateway.api import create_app
    from services.gateway.server import serve
    from services.gateway.settings import GatewaySettings
    from shared.contracts.graph import THING_GET
    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.client import BusClient
    from shared.runtime.service import settle_collector

    settings = settings_for(nats_url, db_url, SAMPLE_RATIO)
    tracing("gateway", settings)
    bus = await BusClient.connect(settings)
    fixed = (await bus.request(VERIFY_KEY, {"key": key})).auth_context()

    async def bare_get(request: Request) -> Response:
        thing = await bus.request(THING_GET, {"id": request.path_params["id"]}, fixed)
        return Response(thing.__pydantic_serializer__.to_json(thing), media_type="application/json")

    bare = Starlette(routes=[Route("/v1/things/{id}", bare_get)])
    gateway = create_app(bus, GatewaySettings(**settings.model_dump(), gateway_access_log=False))
    ours, theirs = await serve(gateway, "127.0.0.1", 0), await serve(bare, "127.0.0.1", 0)
    settle_collector()  # as a gateway process does once started (both apps are served by this one)
    print("ready", ours.url, theirs.url, flush=True)
    await asyncio.Event().wait()


async def _measure(url: str, path: str, headers: dict[str, str]) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def call() -> object:
            try:
                response = await client.get(path)
            except httpx.RemoteProtocolError:  # a keep-alive connection the server closed as it was reused
                response = await client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{url}{path}: {response.status_code} {response.text}")
            return response

        return await request_reply_figures(call, N_LATENCY, N_THROUGHPUT, IN_FLIGHT)


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.bench_gateway", *args], stdout=subprocess.PIPE, text=True)


async def _ready(process: subprocess.Popen) -> list[str]:
    word, *values = (await asyncio.to_thread(process.stdout.readline)).split()  # type: ignore[union-attr]
    assert word == "ready", word
    return values


async def run(nats_url: str, db_url: str) -> list[Figure]:
    services = _spawn("services", nats_url, db_url)
    try:
        key, thing_id = await _ready(services)
        http = _spawn("http", nats_url, db_url, key)
        try:
            gateway_url, bare_url = await _ready(http)
            path, auth = f"/v1/things/{thing_id}", {"Authorization": f"Bearer {key}"}
            ours, bare = [], []
            for _ in range(ROUNDS):
                bare.append(await _measure(bare_url, path, {}))
                ours.append(await _measure(gateway_url, path, auth))
        finally:
            http.terminate()
            http.wait()
    finally:
        services.terminate()
        services.wait()
    p50 = min(r["p50"] for r in ours), min(r["p50"] for r in bare)
    rate = max(r["throughput"] for r in ours), max(r["throughput"] for r in bare)
    note = f"httpx keep-alive, {SAMPLE_RATIO:.0%} sampled, best of {ROUNDS} alternating rounds"
    return [
        Figure(f"{PREFIX}.rr.p50", p50[0], "µs", p50[1], f"sequential; baseline bare route; target ≤1.3×; {note}"),
        Figure(f"{PREFIX}.throughput64", rate[0], "req/s", rate[1], f"{IN_FLIGHT} in flight; target ≥0.7×; {note}"),
    ]


if __name__ == "__main__":
    import uvloop

    command, *args = sys.argv[1:]
    uvloop.run(serve_services(*args) if command == "services" else serve_http(*args))
