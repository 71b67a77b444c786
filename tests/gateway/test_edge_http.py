"""The edge's HTTP behaviour: request ids, body limits, timeouts, health and readiness, metrics, the access log.

Limits and timeouts are tried on a gateway of their own (a 1 KiB body limit, a 0.5 s bus timeout)
with one extra route whose bus request nobody answers: a real subscriber that never replies.
"""

import logging
import re
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import Request
from nats.aio.client import Client as NatsClient

from services.gateway.api import create_app
from services.gateway.auth import Caller as KeyCaller
from services.gateway.server import serve
from services.gateway.settings import GatewaySettings
from shared.kernel import subjects
from shared.kernel.envelope import Empty, register_message
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, assert_problem

SILENT = register_message("edgetest.silent", "one.edgetest.silent", Empty, Empty)
"""A spec whose subscriber (below) takes every request and never answers."""

MAX_BODY = 1024


@pytest.fixture
async def strict(bus: BusClient, settings: Settings, nc: NatsClient) -> AsyncIterator[str]:
    """A gateway with a small body limit and a short timeout, and a route that waits on a silent service."""
    limited = GatewaySettings(**settings.model_dump(), gateway_max_body_bytes=MAX_BODY, gateway_request_timeout=0.5)
    app = create_app(bus, limited)

    async def wait_on_silence(request: Request, caller: KeyCaller) -> dict[str, str]:
        await request.app.state.bus.request(SILENT, {}, caller)
        return {}

    app.add_api_route("/v1/edgetest/silent", wait_on_silence, methods=["GET"])
    silent = await nc.subscribe(SILENT.subject, cb=_ignore)
    state = await serve(app, "127.0.0.1", 0)
    yield state.url
    state.server.should_exit = True
    await state.task
    await silent.unsubscribe()


async def _ignore(_: object) -> None:
    return None


def keyed(url: str, caller: Caller) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {caller.account.key}"}, timeout=10)


class TestRequestId:
    async def test_generated_when_absent_and_kept_when_sent(self, alice: Caller) -> None:
        generated = (await alice.call("GET", "/v1/things")).headers["x-request-id"]
        assert UUID(generated)
        sent = await alice.http.get("/v1/things", headers={"X-Request-Id": "trace-me.42"})
        assert sent.headers["x-request-id"] == "trace-me.42"

    async def test_an_unusable_one_is_replaced(self, alice: Caller) -> None:
        for bad in ("has space", "x" * 200, "new\\nline"):
            answered = await alice.http.get("/v1/things", headers={"X-Request-Id": bad})
            assert answered.headers["x-request-id"] != bad and UUID(answered.headers["x-request-id"])

    async def test_problems_carry_it_too(self, http: httpx.AsyncClient) -> None:
        refused = await http.get("/v1/things", headers={"X-Request-Id": "no-key-here"})
        assert_problem(refused, 401)
        assert refused.headers["x-request-id"] == "no-key-here"


class TestLimits:
    async def test_a_body_over_the_limit_is_refused_unread(self, strict: str, alice: Caller) -> None:
        async with keyed(strict, alice) as client:
            big = {"type": "blog_post", "name": "big", "properties": {"body": "x" * MAX_BODY}}
            problem = assert_problem(await client.post("/v1/things", json=big), 413, "payload_too_large")
            assert problem["details"]["max_bytes"] == MAX_BODY and "1,024" in problem["detail"]
            assert (await client.post("/v1/things", json={"type": "blog_post", "name": "small"})).status_code == 201
            assert [t["name"] for t in (await client.get("/v1/things")).json()["things"]] == ["small"]

    async def test_a_chunked_body_is_cut_off_at_the_limit(self, strict: str, alice: Caller) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"type": "blog_post", "name": "chunked", "properties": {"body": "'
            for _ in range(4):
                yield b"x" * 512
            yield b'"}}'

        async with keyed(strict, alice) as client:
            refused = await client.post("/v1/things", content=chunks(), headers={"Content-Type": "application/json"})
            assert_problem(refused, 413, "payload_too_large")
            assert (await client.get("/v1/things")).json()["things"] == []

    async def test_a_bus_request_that_times_out_is_503_not_a_hang(self, strict: str, alice: Caller) -> None:
        async with keyed(strict, alice) as client:
            problem = assert_problem(await client.get("/v1/edgetest/silent"), 503, "unavailable")
            assert SILENT.subject in problem["detail"]


class TestHealth:
    async def test_alive_and_ready(self, http: httpx.AsyncClient) -> None:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}

    async def test_not_ready_without_the_bus(self, settings: Settings) -> None:
        closed = await BusClient.connect(settings, name="tests-closed")
        await closed.close()
        state = await serve(create_app(closed, settings), "127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(base_url=state.url) as client:
                assert (await client.get("/healthz")).status_code == 200  # alive: no restart for a broker outage
                assert_problem(await client.get("/readyz"), 503, "unavailable")
        finally:
            state.server.should_exit = True
            await state.task

    async def test_status_reports_every_service(self, alice: Caller) -> None:
        answered = await alice.call("GET", "/v1/status")
        assert answered.status_code == 200, answered.text
        services = answered.json()["services"]
        assert set(services) == set(subjects.SERVICES)
        for name, report in services.items():
            assert report["service"] == name and report["healthy"] is True, report


class TestMetricsAndLog:
    async def test_counted_per_route_template_and_status(self, alice: Caller, http: httpx.AsyncClient) -> None:
        thing = (await alice.call("POST", "/v1/things", {"type": "blog_post", "name": "m"})).json()
        await alice.call("GET", f"/v1/things/{thing['id']}")
        stray = f"/nowhere-{uuid4()}"
        assert_problem(await http.get(stray), 404)
        text = (await http.get("/metrics")).text
        assert _count(text, "GET", "/v1/things/{id}", 200) >= 1
        assert _count(text, "POST", "/v1/things", 201) >= 1
        assert _count(text, "GET", "unmatched", 404) >= 1
        assert thing["id"] not in text and stray not in text  # ids and paths never become labels
        assert 'one_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/things/{id}"' in text \
            or 'one_http_request_duration_seconds_bucket{method="GET",route="/v1/things/{id}"' in text

    async def test_one_access_line_per_request_without_secrets(
        self, alice: Caller, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO, logger="one.gateway.access"):
            await alice.http.get("/v1/things?limit=5", headers={"X-Request-Id": "logged-1"})
        [line] = [r.getMessage() for r in caplog.records if r.name == "one.gateway.access" and "logged-1" in r.getMessage()]
        assert line.startswith("GET /v1/things 200 ") and f"org={alice.account.org_id}" in line
        secret = alice.account.key.rsplit("_", 1)[1]
        assert secret not in line and "Bearer" not in line and "limit=5" not in line


def _count(text: str, method: str, route: str, status: int) -> float:
    pattern = (rf'^one_http_requests_total\{{method="{method}",route="{re.escape(route)}",status="{status}"\}} '
               r"([0-9.e+]+)$")
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_answers_go_out_at_once_nagle_off_on_every_connection() -> None:
    """A response is written in pieces (headers, body): with Nagle's algorithm on, the last piece waited for the
    client's delayed ACK (~40 ms per request). asyncio turns it off only on sockets made as TCP (`IPPROTO_TCP`)."""
    import socket

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    state = await serve(Starlette(routes=[Route("/", hello)]), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=state.url) as client:
            assert (await client.get("/")).text == "hello"
            [connection] = state.server.server_state.connections
            accepted = connection.transport.get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        state.server.should_exit = True
        await state.task
