"""The platform as an MCP server, driven by the official `mcp` client over Streamable HTTP (issue 25).

Org A's key lists the tools and uses them (a thing created, read as a tool and as a resource, an event
published and found, knowledge searched, the mutation's event in the log); org B's key, on the same
server, cannot reach org A's thing; no key or a bad key is refused before any MCP traffic.
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from shared.contracts.eventlog import QUERY as EVENT_QUERY
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, assert_problem
from tests.polling import until_async


@asynccontextmanager
async def mcp_as(gateway: str, key: str) -> AsyncIterator[Any]:
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http:
        async with Client(streamable_http_client(f"{gateway}/mcp", http_client=http)) as client:
            yield client


def result_of(called: Any) -> dict[str, Any]:
    assert not called.is_error, called.content
    return called.structured_content or json.loads(called.content[0].text)


async def test_an_mcp_client_uses_the_ontology_of_its_own_org_only(
    gateway: str, alice: Caller, bob: Caller, bus: BusClient
) -> None:
    async with mcp_as(gateway, alice.account.key) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"thing_create", "thing_get", "things_query", "connection_create", "connections_list",
                "event_publish", "events_query", "knowledge_search", "agent_chat"} <= tools
        thing = result_of(await client.call_tool("thing_create", {"type": "blog_post", "name": "Tides",
                                                                  "properties": {"body": "The moon pulls."}}))
        assert result_of(await client.call_tool("thing_get", {"id": thing["id"]}))["thing"]["name"] == "Tides"
        read = await client.read_resource(f"one://things/{thing['id']}")
        assert json.loads(read.contents[0].text)["thing"]["id"] == thing["id"]
        published = result_of(await client.call_tool("event_publish", {
            "type": "content_event", "target_id": thing["id"], "metadata": {"action": "viewed"}}))

        async def found() -> bool:  # acked by the stream at once, queryable once the log has ingested it
            page = result_of(await client.call_tool("events_query", {"target_id": thing["id"]}))
            return published["id"] in {e["id"] for e in page["events"]}

        await until_async(found, timeout=30)
        refused = await client.call_tool("thing_create", {"type": "no_such_type", "name": "x"})
        assert refused.is_error and ": unknown_ontology_type: " in refused.content[0].text  # the typed code
        hits = result_of(await client.call_tool("knowledge_search", {"query": "tides"}))
        assert isinstance(hits["hits"], list)

    async def logged() -> bool:  # the create's event, as from any other door (the outbox relays it)
        page = await bus.request(EVENT_QUERY, {"target_id": thing["id"], "types": ["entity_created"]},
                                 alice.account.ctx)
        return bool(page.events)

    await until_async(logged, timeout=30)

    async with mcp_as(gateway, bob.account.key) as client:
        stolen = await client.call_tool("thing_get", {"id": thing["id"]})
        assert stolen.is_error and ": not_found: " in stolen.content[0].text
        theirs = result_of(await client.call_tool("things_query", {"type": "blog_post"}))
        assert thing["id"] not in {t["id"] for t in theirs["things"]}


async def test_mcp_without_a_valid_key_is_refused_before_any_mcp_traffic(gateway: str) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    async with httpx.AsyncClient(base_url=gateway) as http:
        assert_problem(await http.post("/mcp", json=hello), 401, "unauthenticated")
        assert_problem(await http.post("/mcp", json=hello, headers={"Authorization": "Bearer one_nope"}), 401)
