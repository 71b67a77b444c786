"""acp.checkout.rate: complete ACP checkout flows per second through the gateway vs a bare Starlette app, same run.

Three processes, as in bench_gateway: the services (tenancy, graph, commerce with the test-mode PSP), the
HTTP side (`python -m tests.bench.bench_acp http ...`: the gateway app and the bare app, each served by
`services.gateway.server.serve`), and this one, the client (httpx, keep-alive, `IN_FLIGHT` flows at once).

A flow is what an agent platform sends for one purchase of a digital product: `POST /acp/checkout_sessions`
(create), `POST .../{id}` (update: a second unit), then `POST .../{id}/complete` paying with a Delegate
Payment vault token. Through the gateway each request carries an `Idempotency-Key` and `API-Version`, is
checked against the ACP JSON Schema, its answer too, and commerce prices it from the catalog, keeps the
idempotency record (claimed and answered in the work's own transaction), charges the token once, writes the
order and the events; the payment thing, the connection and the payment event are written right after the
answer (a settlement queued with the order), so they are part of the load while the flows run. The vault token itself (`POST /acp/agentic_commerce/delegate_payment`, the PSP's API, not
checkout's) is made for the session by the client between update and complete and is counted in our time.
The bare app answers the same three requests: it validates each request and answer against the same
schema bundle and keeps the session in one Postgres row (INSERT, then UPDATEs), answering with the bodies
the gateway gave in a warm-up flow (fresh id and status). Target ≥ 0.4×.
"""

import asyncio
import json
import subprocess
import sys
import time
from typing import Any
from uuid import uuid4

from tests.bench.bench_gateway import _ready
from tests.bench.harness import Figure
from tests.bench.rr_processes import settings_for, tracing

PREFIX = "acp"
N_FLOWS = 120
IN_FLIGHT = 8
ROUNDS = 2
SAMPLE_RATIO = 0.1
BASE = "/acp/checkout_sessions"


async def serve_services(nats_url: str, db_url: str) -> None:
    """Tenancy, graph and commerce; an org without rate limits selling one digital product."""
    from pydantic import SecretStr

    from services.commerce.app import definition as commerce
    from services.graph.app import definition as graph
    from shared.contracts.commerce.products import PRODUCT_CREATE
    from shared.contracts.tenancy import RATE_SET, VERIFY_KEY
    from shared.runtime.service import ServiceRuntime
    from tests.bench.services import start_with_tenancy

    platform = await start_with_tenancy("acp", commerce, nats_url, db_url, SAMPLE_RATIO,
                                        commerce_wallet_secret=SecretStr("bench-only-" + "w" * 32))
    common = settings_for(nats_url, db_url, SAMPLE_RATIO)
    await ServiceRuntime(graph, graph.settings(**common.model_dump())).start(migrate=False)
    key = await platform.new_org_key()
    owner = (await platform.bus.request(VERIFY_KEY, {"key": key})).auth_context()
    await platform.bus.request(RATE_SET, {"scope": "org", "max_calls": 1_000_000_000, "window_seconds": 60}, owner)
    product = await platform.bus.request(PRODUCT_CREATE, {"name": "E-book", "price": 1000, "tax_category": "digital"},
                                         owner)
    print("ready", key, product.id, flush=True)
    await asyncio.Event().wait()


async def serve_http(nats_url: str, db_url: str) -> None:
    """The gateway and the bare app, each on its own port, on this process's loop."""
    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from services.gateway.api import create_app
    from services.gateway.server import serve
    from services.gateway.settings import GatewaySettings
    from shared.contracts.commerce.acp_schema import errors
    from shared.runtime.client import BusClient
    from shared.runtime.db import plain_url
    from shared.runtime.service import settle_collector

    settings = settings_for(nats_url, db_url, SAMPLE_RATIO)
    tracing("gateway", settings)
    pool = await asyncpg.create_pool(plain_url(db_url), min_size=2, max_size=IN_FLIGHT)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_acp_sessions (id text PRIMARY KEY, body jsonb NOT NULL)")
    templates: dict[str, dict[str, Any]] = {}

    def answer(kind: str, definition: str, session_id: str, request_body: dict[str, Any]) -> dict[str, Any]:
        body = {**templates[kind], "id": session_id}
        if errors(definition, body):
            raise RuntimeError(f"bare: the {kind} answer is not a valid {definition}")
        return body

    async def checked(request: Request, definition: str) -> dict[str, Any] | Response:
        body = json.loads(await request.body())
        if errors(definition, body):
            return JSONResponse({"type": "invalid_request", "code": "invalid", "message": "invalid"}, 400)
        return body

    async def create(request: Request) -> Response:
        body = await checked(request, "CheckoutSessionCreateRequest")
        if isinstance(body, Response):
            return body
        session = answer("create", "CheckoutSession", f"cs_{uuid4().hex}", body)
        await pool.execute("INSERT INTO bench_acp_sessions (id, body) VALUES ($1, $2)", session["id"],
                           json.dumps(session))
        return JSONResponse(session, 201)

    async def change(request: Request, kind: str, request_definition: str, definition: str) -> Response:
        body = await checked(request, request_definition)
        if isinstance(body, Response):
            return body
        session = answer(kind, definition, request.path_params["id"], body)
        updated = await pool.execute("UPDATE bench_acp_sessions SET body = $2 WHERE id = $1",
                                     session["id"], json.dumps(session))
        if updated != "UPDATE 1":
            return JSONResponse({"type": "invalid_request", "code": "not_found", "message": "no session"}, 404)
        return JSONResponse(session)

    async def update(request: Request) -> Response:
        return await change(request, "update", "CheckoutSessionUpdateRequest", "CheckoutSession")

    async def complete(request: Request) -> Response:
        return await change(request, "complete", "CheckoutSessionCompleteRequest", "CheckoutSessionWithOrder")

    async def learn(request: Request) -> Response:
        templates.update(json.loads(await request.body()))
        return Response(status_code=204)

    bare = Starlette(routes=[Route(BASE, create, methods=["POST"]), Route(BASE + "/{id}", update, methods=["POST"]),
                             Route(BASE + "/{id}/complete", complete, methods=["POST"]),
                             Route("/_templates", learn, methods=["POST"])])
    bus = await BusClient.connect(settings)
    gateway = create_app(bus, GatewaySettings(**settings.model_dump(), gateway_access_log=False))
    ours, theirs = await serve(gateway, "127.0.0.1", 0), await serve(bare, "127.0.0.1", 0)
    settle_collector()  # as a gateway process does once started (both apps are served by this one)
    print("ready", ours.url, theirs.url, flush=True)
    await asyncio.Event().wait()


def _headers() -> dict[str, str]:
    return {"API-Version": "2026-04-17", "Idempotency-Key": str(uuid4())}


def _delegation(session_id: str, amount: int) -> dict[str, Any]:
    return {"payment_method": {"type": "card", "card_number_type": "fpan", "number": "4242424242424242",
                               "exp_month": "11", "exp_year": "2099", "display_card_funding_type": "credit", "metadata": {}},
            "allowance": {"reason": "one_time", "max_amount": amount, "currency": "usd",
                          "checkout_session_id": session_id, "merchant_id": "bench", "expires_at": "2099-01-01T00:00:00Z"},
            "risk_signals": [], "metadata": {}}


async def _post(client: Any, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=_headers())
    if response.status_code != status:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return response.json()


async def _flow(client: Any, product: str, *, vault: bool) -> dict[str, dict[str, Any]]:
    created = await _post(client, BASE, {"line_items": [{"id": product}], "currency": "usd", "capabilities": {},
                                         "buyer": {"email": "reader@example.com"}}, 201)
    updated = await _post(client, f"{BASE}/{created['id']}", {"line_items": [{"id": product}, {"id": product}]}, 200)
    token = "vt_bare"
    if vault:
        total = next(t["amount"] for t in updated["totals"] if t["type"] == "total")
        token = (await _post(client, "/acp/agentic_commerce/delegate_payment", _delegation(created["id"], total),
                             201))["id"]
    payment = {"handler_id": "delegated_card", "instrument": {"type": "card", "credential": {"type": "spt",
                                                                                             "token": token}}}
    done = await _post(client, f"{BASE}/{created['id']}/complete", {"payment_data": payment}, 200)
    if done["status"] != "completed":
        raise RuntimeError(f"not completed: {done['status']}")
    return {"create": created, "update": updated, "complete": done}


async def _rate(url: str, headers: dict[str, str], product: str, *, vault: bool) -> float:
    import httpx

    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        remaining = N_FLOWS

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await _flow(client, product, vault=vault)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return N_FLOWS / (time.perf_counter() - start)


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.bench_acp", *args], stdout=subprocess.PIPE, text=True)


async def run(nats_url: str, db_url: str) -> list[Figure]:
    import httpx

    services = _spawn("services", nats_url, db_url)
    try:
        key, product = await _ready(services)
        http = _spawn("http", nats_url, db_url)
        try:
            gateway_url, bare_url = await _ready(http)
            auth = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=gateway_url, headers=auth, timeout=60) as client:
                warm = await _flow(client, product, vault=True)
            async with httpx.AsyncClient(base_url=bare_url, timeout=60) as client:
                await client.post("/_templates", json=warm)
            ours, bare = [], []
            for _ in range(ROUNDS):
                bare.append(await _rate(bare_url, {}, product, vault=False))
                ours.append(await _rate(gateway_url, auth, product, vault=True))
        finally:
            http.terminate()
            http.wait()
    finally:
        services.terminate()
        services.wait()
    note = (f"create → update → complete (+ the PSP's delegate_payment, ours only), {IN_FLIGHT} flows in flight, "
            f"{SAMPLE_RATIO:.0%} sampled, best of {ROUNDS} alternating rounds; target ≥0.4×")
    return [Figure(f"{PREFIX}.checkout.rate", max(ours), "flows/s", max(bare), note)]


if __name__ == "__main__":
    import uvloop

    command, *args = sys.argv[1:]
    uvloop.run(serve_services(*args) if command == "services" else serve_http(*args))
