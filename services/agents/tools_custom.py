"""Custom tools: HTTP endpoints with a JSON schema (signed requests) and MCP servers' tools (Streamable HTTP).

No code of an agent's author runs in this service: a custom tool is a request to somebody else's server.
An HTTP tool's request is signed so its server can tell it came from here and is fresh:
`X-One-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the Stripe scheme);
the server should refuse a `t` older than a few minutes. MCP servers are opened once per run, on first use.
"""

import json
from contextlib import AsyncExitStack
from typing import Any

import httpx
import jsonschema

from services.agents.providers.base import ToolSpec
from shared.kernel.errors import InvalidRequest, Unavailable
from shared.kernel.signatures import sign

SIGNATURE_HEADER = "X-One-Signature"


def http_tool_specs(config: dict[str, Any]) -> list[ToolSpec]:
    offered = set(config.get("tools") or [])
    return [ToolSpec(t["name"], t["description"], t["parameters"]) for t in config.get("http_tools") or []
            if t["name"] in offered]


async def call_http_tool(client: httpx.AsyncClient, tool: dict[str, Any], arguments: dict[str, Any],
                         run_headers: dict[str, str]) -> Any:
    """POST the arguments (checked against the tool's schema); the JSON (or text) it answers."""
    try:
        jsonschema.validate(arguments, tool["parameters"])
    except jsonschema.ValidationError as error:
        raise InvalidRequest(f"arguments do not match the tool's schema: {error.message}") from None
    body = json.dumps(arguments, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", **run_headers}
    if tool.get("secret"):
        headers[SIGNATURE_HEADER] = sign(tool["secret"], body)
    try:
        response = await client.post(tool["url"], content=body, headers=headers, timeout=tool.get("timeout", 10.0))
    except httpx.HTTPError as error:
        raise Unavailable(f"the tool's server could not be reached: {type(error).__name__}") from None
    if response.status_code >= 400:
        raise Unavailable(f"the tool's server answered {response.status_code}", {"status": response.status_code,
                                                                                "body": response.text[:500]})
    try:
        return response.json()
    except ValueError:
        return response.text


class McpTools:
    """The MCP servers of one run: connected on first use, closed when the run ends."""

    def __init__(self, servers: list[dict[str, Any]]) -> None:
        self.servers = {server["name"]: server for server in servers}
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}

    async def _client(self, name: str) -> Any:
        if name not in self._clients:
            from mcp import Client  # imported when an agent first uses MCP
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            server = self.servers[name]
            http = create_mcp_http_client(headers=server.get("headers") or None)
            await self._stack.enter_async_context(http)
            transport = streamable_http_client(server["url"], http_client=http)
            self._clients[name] = await self._stack.enter_async_context(Client(transport))
        return self._clients[name]

    async def specs(self) -> list[ToolSpec]:
        """Every offered tool of every server, as `<server>__<tool>`; a server that does not answer offers none."""
        found = []
        for name, server in self.servers.items():
            try:
                listed = await (await self._client(name)).list_tools()
            except Exception:
                continue
            allowed = set(server.get("tools") or [])
            found += [ToolSpec(f"{name}__{tool.name}", tool.description or tool.name, tool.input_schema or
                               {"type": "object"}) for tool in listed.tools if not allowed or tool.name in allowed]
        return found

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        name, _, remote = tool.partition("__")
        try:
            result = await (await self._client(name)).call_tool(remote, arguments)
        except Exception as error:
            raise Unavailable(f"the MCP server {name!r} failed: {type(error).__name__}: {error}") from None
        texts = [block.text for block in result.content if getattr(block, "text", None) is not None]
        if result.is_error:
            raise InvalidRequest(f"the MCP tool failed: {' '.join(texts)[:500]}")
        return result.structured_content if result.structured_content is not None else "\n".join(texts)

    async def close(self) -> None:
        try:
            await self._stack.aclose()
        except Exception:  # a server gone away while we close: nothing left to release
            pass
