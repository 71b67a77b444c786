"""A plugin's MCP servers as the org's tool sources while its install is active: their tools listed and called
through tools_custom's MCP client (one connection per listing or call), counted like the plugin's HTTP actions (the
org's execution rate limit, the failure streak that suspends the install at the tenth failure in a row).
"""

from typing import Any

from services.agents.providers.base import ToolSpec
from services.agents.service_plugins_execute import active_install, failed, succeeded
from services.agents.tools_custom import McpTools
from shared.contracts.agents.plugins import EXECUTION_RATE_OPERATION
from shared.contracts.tenancy import RATE_HIT
from shared.kernel.errors import Unavailable
from shared.runtime.context import WorkContext


async def mcp_tool_specs(server: dict[str, str], prefix: str, wanted: list[str]) -> list[ToolSpec]:
    """The server's tools named in `wanted` (`<prefix>__<tool>`), listed over Streamable HTTP; none if it is down."""
    key = server["name"]  # McpTools names a tool `<server>__<tool>`; agents know it by its plugin prefix
    mcp = McpTools([{"name": key, "url": server["url"], "tools": [t.removeprefix(f"{prefix}__") for t in wanted]}])
    try:
        specs = await mcp.specs()
    finally:
        await mcp.close()
    return [ToolSpec(f"{prefix}__{s.name.removeprefix(f'{key}__')}", s.description, s.parameters) for s in specs]


async def call_mcp_tool(ctx: WorkContext, plugin: str, server: dict[str, str], remote: str,
                        arguments: dict[str, Any]) -> Any:
    """One call of a plugin's MCP tool, counted like an action's: the org's execution rate limit; a server that
    fails (unreachable, a transport error) counts toward the suspension streak; a tool's own error does not."""
    row, _ = await active_install(ctx, plugin)
    await ctx.call(RATE_HIT, {"operation": EXECUTION_RATE_OPERATION})
    mcp = McpTools([server])
    action = f"{server['name']}__{remote}"
    try:
        result = await mcp.call(action, arguments)
    except Unavailable as error:
        raise await failed(ctx, row.id, plugin, action, error.message) from None
    finally:
        await mcp.close()
    await succeeded(ctx, row.id, plugin, action)
    return result
