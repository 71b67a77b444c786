"""Custom tools against real servers: a signed HTTP endpoint that checks the signature and its timestamp itself
(not with the service's code), and a real MCP server over Streamable HTTP. Arguments that do not match a tool's
schema never reach the server and are reported to the model; a tool outside the allowed list is never called;
secrets and headers are never returned by the agent's config."""

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.contracts.agents import AGENT_GET
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import chat, make_agent, owner  # noqa: F401 (fixtures)
from tests.agents.local_server import LocalServer
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account

SECRET = "tool-signing-secret-0123456789"
MAX_AGE = 300


class SignedEndpoint:
    """A tool's server as its author would write it: refuses a bad signature or a stale timestamp with 401."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.app = Starlette(routes=[Route("/price", self.price, methods=["POST"])])

    async def price(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("x-one-signature", "")
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        timestamp = int(fields.get("t", "0"))
        expected = hmac.new(SECRET.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("v1", "")):
            self.refused.append("signature")
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if abs(time.time() - timestamp) > MAX_AGE:
            self.refused.append("stale")
            return JSONResponse({"error": "stale request"}, status_code=401)
        arguments = json.loads(body)
        self.accepted.append({"arguments": arguments, "timestamp": timestamp,
                              "headers": {k: v for k, v in request.headers.items() if k.startswith("x-one-")}})
        return JSONResponse({"sku": arguments["sku"], "price": 42, "cost_price": 17})


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[SignedEndpoint, str]]:
    found = SignedEndpoint()
    server = LocalServer(found.app)
    url = await server.start()
    yield found, f"{url}/price"
    await server.stop()


def _tool_names(request: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools") or []}


async def test_http_tools_are_signed_schema_checked_and_masked(
    bus: BusClient, owner: Account, model_server: ScriptedModel, endpoint: tuple[SignedEndpoint, str]  # noqa: F811
) -> None:
    server, url = endpoint
    schema = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"],
              "additionalProperties": False}
    model, script = model_server.script(
        {"tool_calls": [("price", {"sku": "A-1"}), ("price", {"sku": 5}), ("price", {"sku": "A-2", "org_id": "x"}),
                        ("price_unsigned", {"sku": "A-3"}), ("price_wrong_secret", {"sku": "A-4"})]},
        {"text": "A-1 costs 42."})
    agent = await make_agent(bus, owner, model, tools=["price", "price_unsigned", "price_wrong_secret"], http_tools=[
        {"name": "price", "description": "The price of a product.", "url": url, "parameters": schema,
         "secret": SECRET},
        {"name": "price_unsigned", "description": "Unsigned.", "url": url, "parameters": schema},
        {"name": "price_wrong_secret", "description": "Signed with another secret.", "url": url,
         "parameters": schema, "secret": "not-the-endpoints-secret"},
    ], permissions=[{"tool": "price*", "actions": ["execute"], "denied_fields": ["cost_price"]}])
    run = (await chat(bus, owner, agent.slug, "How much is A-1?")).run
    assert run.status == "completed" and run.answer == "A-1 costs 42.", run.error

    assert _tool_names(script.requests[0]) == {"price", "price_unsigned", "price_wrong_secret"}
    offered = next(t for t in script.requests[0]["tools"] if t["function"]["name"] == "price")
    assert offered["function"]["parameters"] == schema

    assert [a["arguments"] for a in server.accepted] == [{"sku": "A-1"}]  # only the valid, signed call got through
    accepted = server.accepted[0]
    assert abs(time.time() - accepted["timestamp"]) < 120
    assert accepted["headers"]["x-one-org"] == str(owner.org_id)
    assert accepted["headers"]["x-one-run"] == str(run.id) and accepted["headers"]["x-one-agent"] == agent.slug
    assert server.refused == ["signature", "signature"]  # the unsigned call and the one signed with another secret

    results = [json.loads(r["content"]) for r in script.tool_results()]
    assert results[0] == {"sku": "A-1", "price": 42}  # cost_price is a denied field: masked
    for invalid in results[1:3]:
        assert invalid["error"]["code"] == "invalid" and "schema" in invalid["error"]["message"]
    for refused in results[3:]:
        assert refused["error"]["code"] == "unavailable" and refused["error"]["status"] == 401

    config = (await bus.request(AGENT_GET, {"slug": agent.slug}, owner.ctx)).production
    assert [t.has_secret for t in config.http_tools] == [True, False, True]
    assert SECRET not in config.model_dump_json()


class McpCalculator:
    """A real MCP server (Streamable HTTP) with three tools; it records what it was asked and with which headers."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.authorization: set[str] = set()
        server = MCPServer("calculator")

        @server.tool()
        def add(a: int, b: int) -> int:
            """Add two integers."""
            self.calls.append("add")
            return a + b

        @server.tool()
        def notes(topic: str) -> dict[str, str]:
            """Notes about a topic."""
            self.calls.append("notes")
            return {"topic": topic, "text": f"notes on {topic}", "internal": "do not show"}

        @server.tool()
        def wipe() -> str:
            """Not offered to the agent."""
            self.calls.append("wipe")
            raise ToolError("must never be called")

        inner = server.streamable_http_app()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.authorization.add(dict(scope["headers"]).get(b"authorization", b"").decode())
            await inner(scope, receive, send)

        self.app = app


@pytest.fixture
async def mcp_server() -> AsyncIterator[tuple[McpCalculator, str]]:
    calculator = McpCalculator()
    server = LocalServer(calculator.app, lifespan="on")
    url = await server.start()
    yield calculator, f"{url}/mcp"
    await server.stop()


async def test_mcp_tools_over_streamable_http(
    bus: BusClient, owner: Account, model_server: ScriptedModel, mcp_server: tuple[McpCalculator, str]  # noqa: F811
) -> None:
    calculator, url = mcp_server
    model, script = model_server.script(
        {"tool_calls": [("calc__add", {"a": 2, "b": 40}), ("calc__notes", {"topic": "tax"}), ("calc__wipe", {}),
                        ("calc__add", {"a": "two"})]},
        {"text": "2 + 40 = 42"})
    agent = await make_agent(bus, owner, model, mcp_servers=[
        {"name": "calc", "url": url, "tools": ["add", "notes"], "headers": {"Authorization": "Bearer mcp-token"}},
    ], permissions=[{"tool": "calc__*", "actions": ["execute"], "denied_fields": ["internal"]}])
    run = (await chat(bus, owner, agent.slug, "What is 2 + 40?")).run
    assert run.status == "completed" and run.answer == "2 + 40 = 42", run.error

    assert _tool_names(script.requests[0]) == {"calc__add", "calc__notes"}  # `wipe` is not in the server's list
    results = [json.loads(r["content"]) for r in script.tool_results()]
    assert results[0] == {"result": 42}
    assert results[1] == {"topic": "tax", "text": "notes on tax"}  # `internal` is a denied field: masked
    assert results[2]["error"]["code"] == "tool_forbidden"
    assert results[3]["error"]["code"] == "invalid"  # the server refused the arguments; the model is told
    assert calculator.calls == ["add", "notes"]
    assert calculator.authorization == {"Bearer mcp-token"}

    config = (await bus.request(AGENT_GET, {"slug": agent.slug}, owner.ctx)).production
    assert config.mcp_servers[0].has_headers and "mcp-token" not in config.model_dump_json()
