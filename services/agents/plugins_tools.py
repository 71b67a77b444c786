"""An org's active plugins as agent tools: `plugin__<short name>__<action>`, offered when an agent's config names it;
the tools of a plugin's MCP servers likewise, as `plugin__<short name>__<server>__<tool>` (plugins_mcp.py).

The tool's schema is the action's; calling it runs the action as the run (service_plugins_execute.py: the rate
limit, the failure streak and suspension apply as to any other call). A tool whose plugin is not installed and
active in the run's org is offered nothing and refused when called, like any unknown tool.
"""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents import repository_plugins as repo
from services.agents.plugins_mcp import call_mcp_tool, mcp_tool_specs
from services.agents.providers.base import ToolSpec
from services.agents.service_plugins_execute import run_action, tool_name
from shared.contracts.agents.plugins import PLUGIN_TOOL_PREFIX, PluginStateConflict

if TYPE_CHECKING:
    from services.agents.run_work import RunWork


async def active_tools(session: AsyncConnection, org_id: UUID) -> dict[str, tuple[str, dict[str, Any]]]:
    """Tool name -> (plugin, action) for every action of the org's active installs."""
    rows = [row for row in await repo.installs(session, org_id) if row.status == "active"]
    manifests = await repo.plugins_named(session, [row.plugin for row in rows])
    return {tool_name(row.plugin, action["name"]): (row.plugin, action)
            for row in rows for action in manifests[row.plugin].manifest["actions"]}


async def active_mcp_servers(session: AsyncConnection, org_id: UUID) -> dict[str, tuple[str, dict[str, str]]]:
    """Tool prefix (`plugin__<short>__<server>`) -> (plugin, server) for every MCP server of the org's active installs
    (plugins_mcp.py: its tools are `<prefix>__<tool>`)."""
    rows = [row for row in await repo.installs(session, org_id) if row.status == "active"]
    manifests = await repo.plugins_named(session, [row.plugin for row in rows])
    return {tool_name(row.plugin, server["name"]): (row.plugin, server)
            for row in rows for server in manifests[row.plugin].manifest.get("mcp_servers") or []}


def _mcp_tool(name: str, servers: dict[str, tuple[str, dict[str, str]]]) -> tuple[str, dict[str, str], str] | None:
    """(plugin, server, the server's tool) of a plugin MCP tool name, if an active server has that prefix."""
    prefix = next((p for p in servers if name.startswith(f"{p}__") and len(name) > len(p) + 2), None)
    return None if prefix is None else (*servers[prefix], name.removeprefix(f"{prefix}__"))


def _offered(work: "RunWork") -> list[str]:
    return [t for t in work.config.get("tools") or [] if t.startswith(PLUGIN_TOOL_PREFIX)]


async def tool_specs(work: "RunWork") -> list[ToolSpec]:
    offered = _offered(work)
    if not offered:
        return []
    async with work.runtime.db.transaction(work.run.org_id) as session:
        tools = await active_tools(session, work.run.org_id)
        servers = await active_mcp_servers(session, work.run.org_id)
    specs = [ToolSpec(name, f"{tools[name][0]}: {tools[name][1]['description']}", tools[name][1]["parameters"])
             for name in offered if name in tools]
    for prefix, (_, server) in servers.items():
        wanted = [name for name in offered if name not in tools and name.startswith(f"{prefix}__")]
        if wanted:
            specs += await mcp_tool_specs(server, prefix, wanted)
    return specs


async def call_plugin_tool(work: "RunWork", name: str, arguments: dict[str, Any]) -> Any:
    async with work.runtime.db.transaction(work.run.org_id) as session:
        tools = await active_tools(session, work.run.org_id)
        servers = await active_mcp_servers(session, work.run.org_id)
    mcp = None if name in tools else _mcp_tool(name, servers)
    if mcp is not None and name in _offered(work):
        return await call_mcp_tool(work.ctx, *mcp, arguments)
    if name not in tools or name not in _offered(work):
        raise PluginStateConflict(f"no active plugin of this organization offers the tool {name}", {"tool": name})
    plugin, action = tools[name]
    headers = {"X-One-Org": str(work.run.org_id), "X-One-Run": str(work.run.id), "X-One-Agent": work.agent.slug}
    return await run_action(work.ctx, plugin, action["name"], arguments, work.state.http, headers)
