"""The MCP server's tools and resources: each one bus request as the caller (`caller_of(ctx)`)."""

import json
from typing import Any, Literal
from uuid import UUID

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from shared.contracts.agents import CHAT
from shared.contracts.eventlog import APPEND, QUERY as EVENT_QUERY
from shared.contracts.graph import (
    CONNECTION_CREATE,
    CONNECTION_QUERY,
    THING_CREATE,
    THING_GET,
    THING_QUERY,
    THING_UPDATE,
)
from shared.contracts.knowledge import ITEM_GET, SEARCH
from shared.kernel.envelope import AuthContext, MessageSpec
from shared.kernel.errors import OneError

CALLER = "one_caller"
"""Where the `/mcp` route leaves the verified auth context: the request scope's state."""


def caller_of(ctx: Context) -> AuthContext:
    request = ctx.request_context.request
    caller = getattr(getattr(request, "state", None), CALLER, None)
    if not isinstance(caller, AuthContext):  # only reachable if the server is mounted without `/mcp`'s check
        raise ToolError("unauthenticated: an API key is required")
    return caller


def build_server(bus: Any) -> MCPServer:
    """The tools and resources, over `bus` (the gateway's `EdgeBus`)."""
    server = MCPServer("ONE on a bus", instructions=(
        "The organization's ontology: things (typed entities with properties), connections between them, "
        "events (what happened), knowledge (searchable by meaning) and agents. Every call acts as the API key's "
        "owner, within that key's organization and permissions."))

    async def ask(ctx: Context, spec: MessageSpec[Any, Any], payload: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await bus.request(spec, {k: v for k, v in payload.items() if v is not None}, caller_of(ctx))
        except OneError as error:  # the typed error, as the tool's error text: `<code>: <message>`
            raise ToolError(f"{error.code}: {error}" + (f" {json.dumps(error.details)}" if error.details else ""))
        return result.model_dump(mode="json")

    @server.tool()
    async def thing_create(type: str, name: str, ctx: Context, properties: dict[str, Any] | None = None,
                           status: Literal["draft", "active"] = "draft") -> dict[str, Any]:
        """Create a thing of an ontology type (e.g. `course`, `blog_post`, `product`) with its properties."""
        return await ask(ctx, THING_CREATE, {"type": type, "name": name, "properties": properties or {},
                                             "status": status})

    @server.tool()
    async def thing_get(id: UUID, ctx: Context) -> dict[str, Any]:
        """One thing by id, with its properties."""
        return await ask(ctx, THING_GET, {"id": id})

    @server.tool()
    async def thing_update(id: UUID, ctx: Context, name: str | None = None,
                           properties: dict[str, Any] | None = None) -> dict[str, Any]:
        """Rename a thing or change some of its properties (the others are kept)."""
        return await ask(ctx, THING_UPDATE, {"id": id, "name": name, "properties": properties})

    @server.tool()
    async def things_query(ctx: Context, type: str | None = None, text: str | None = None,
                           limit: int = 20) -> dict[str, Any]:
        """Things of the organization, by type and/or a text in their name."""
        return await ask(ctx, THING_QUERY, {"type": type, "text": text, "limit": limit})

    @server.tool()
    async def connection_create(from_id: UUID, to_id: UUID, type: str, ctx: Context,
                                metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Connect two things with an ontology relation (e.g. `owns`, `enrolled_in`, `member_of`)."""
        return await ask(ctx, CONNECTION_CREATE, {"from_id": from_id, "to_id": to_id, "type": type,
                                                  "metadata": metadata or {}})

    @server.tool()
    async def connections_list(thing_id: UUID, ctx: Context, direction: Literal["out", "in", "both"] = "both",
                               types: list[str] | None = None, limit: int = 50) -> dict[str, Any]:
        """A thing's connections, outgoing, incoming or both."""
        return await ask(ctx, CONNECTION_QUERY, {"thing_id": thing_id, "direction": direction,
                                                 "types": types or [], "limit": limit})

    @server.tool()
    async def event_publish(type: str, ctx: Context, target_id: UUID | None = None,
                            metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record that something happened (an ontology event type, e.g. `content_event`), about a thing."""
        return await ask(ctx, APPEND, {"type": type, "target_id": target_id, "metadata": metadata or {}})

    @server.tool()
    async def events_query(ctx: Context, types: list[str] | None = None, target_id: UUID | None = None,
                           limit: int = 50) -> dict[str, Any]:
        """The organization's events, newest first, by type and/or target."""
        return await ask(ctx, EVENT_QUERY, {"types": types, "target_id": target_id, "limit": limit,
                                            "order": "desc"})

    @server.tool()
    async def knowledge_search(query: str, ctx: Context, k: int = 5) -> dict[str, Any]:
        """Search the organization's knowledge by meaning; each hit cites its source thing."""
        return await ask(ctx, SEARCH, {"query": query, "k": k})

    @server.tool()
    async def agent_chat(agent: str, message: str, ctx: Context, thread_id: UUID | None = None) -> dict[str, Any]:
        """Send a message to one of the organization's agents (by slug) and get its answer; `thread_id` continues
        a conversation."""
        return await ask(ctx, CHAT, {"slug": agent, "message": message, "thread_id": thread_id})

    @server.resource("one://things/{id}", mime_type="application/json")
    async def thing_resource(id: str, ctx: Context) -> str:
        """A thing of the organization."""
        return json.dumps(await _read(ctx, THING_GET, id))

    @server.resource("one://knowledge/{id}", mime_type="application/json")
    async def knowledge_resource(id: str, ctx: Context) -> str:
        """A knowledge item of the organization (its text and where it comes from)."""
        return json.dumps(await _read(ctx, ITEM_GET, id))

    async def _read(ctx: Context, spec: MessageSpec[Any, Any], id: str) -> dict[str, Any]:
        try:
            return await ask(ctx, spec, {"id": UUID(id)})
        except (ValueError, ToolError) as error:
            raise ResourceError(str(error)) from None

    return server
