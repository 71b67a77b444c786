"""Running an active plugin's action: an HTTP request to the endpoint its manifest names (tools_custom's call path).

The action's URL is filled from the install's settings (`{baseUrl}/forecast`), its arguments checked against the
action's schema, and the request signed with the secret setting the action names (`signWith`). Each call counts
against the org's `plugin_execution` rate limit (tenancy). A success resets the install's failure streak and is a
`plugin_action_executed` event; a failure is a `plugin_error_occurred` event, and the tenth in a row suspends the
install (status `suspended`, its thing inactive, a `plugin_deactivated` event with the reason) until it is
activated again. A caller's bad arguments are refused before any request and count as no failure.
"""

import re
from typing import Any

import httpx
import jsonschema

from services.agents import plugin_secrets, repository_plugins as repo
from services.agents.service_plugins import load as load_plugin
from services.agents.service_plugins_install import load as load_install
from services.agents.tools_custom import call_http_tool
from shared.contracts.agents.plugins import (
    EXECUTION_RATE_OPERATION,
    PLUGIN_TOOL_PREFIX,
    SUSPEND_AFTER_FAILURES,
    PluginActionFailed,
    PluginActionResult,
    PluginExecute,
    PluginNotFound,
    PluginSettingsInvalid,
    PluginStateConflict,
)
from shared.contracts.graph import THING_UPDATE
from shared.contracts.tenancy import RATE_HIT
from shared.kernel.errors import InvalidRequest, OneError
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def tool_name(plugin: str, action: str) -> str:
    """The agent tool of a plugin's action: `plugin__<short name>__<action>` (`@elizaos/plugin-weather` -> weather)."""
    short = re.sub(r"[^A-Za-z0-9_-]", "_", plugin.rpartition("/")[2].removeprefix("plugin-"))
    return f"{PLUGIN_TOOL_PREFIX}{short}__{action}"[:64]


async def execute(ctx: WorkContext, payload: PluginExecute, http: httpx.AsyncClient) -> PluginActionResult:
    require(ctx.auth, "plugins", "execute")
    result = await run_action(ctx, payload.name, payload.action, payload.arguments, http, {})
    return PluginActionResult(plugin=payload.name, action=payload.action, result=result)


async def run_action(ctx: WorkContext, name: str, action_name: str, arguments: dict[str, Any],
                     http: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    """The action's answer; `PluginActionFailed` when its server failed (the failure counted first)."""
    row, manifest = await active_install(ctx, name)
    action = next((a for a in manifest["actions"] if a["name"] == action_name), None)
    if action is None:
        raise PluginNotFound(f"{name} has no action {action_name}", {"plugin": name, "action": action_name})
    try:
        jsonschema.validate(arguments, action["parameters"])
    except jsonschema.ValidationError as error:
        raise InvalidRequest(f"arguments do not match the action's schema: {error.message}") from None
    settings = {**row.settings, **await plugin_secrets.unseal(ctx.runtime, row.org_id, row.id, row.secrets_sealed)}
    missing = sorted(set(_PLACEHOLDER.findall(action["url"])) - set(settings))
    if missing or (action["signWith"] and action["signWith"] not in settings):
        raise PluginSettingsInvalid(f"configure {name} first: its action needs the settings "
                                    f"{', '.join(missing or [action['signWith']])}", {"missing": missing})
    await ctx.call(RATE_HIT, {"operation": EXECUTION_RATE_OPERATION})
    tool = {"url": _PLACEHOLDER.sub(lambda m: str(settings[m.group(1)]), action["url"]),
            "parameters": action["parameters"], "timeout": action["timeout"],
            "secret": str(settings[action["signWith"]]) if action["signWith"] else None}
    try:
        result = await call_http_tool(http, tool, arguments, headers)
    except OneError as error:
        raise await failed(ctx, row.id, name, action_name, error.message) from None
    await succeeded(ctx, row.id, name, action_name)
    return result


async def active_install(ctx: WorkContext, name: str) -> tuple[Any, dict[str, Any]]:
    """The org's install of `name` and its manifest; `PluginStateConflict` unless it is active."""
    async with ctx.transaction() as tx:
        row = await load_install(tx, name)
        manifest = (await load_plugin(tx, name)).manifest
    if row.status != "active":
        why = f": {row.suspended_reason}" if row.status == "suspended" else ""
        raise PluginStateConflict(f"{name} is {row.status}, not active{why}", {"status": row.status})
    return row, manifest


async def succeeded(ctx: WorkContext, install_id: Any, name: str, action: str) -> None:
    """A success of one of the install's tools: its failure streak reset, a `plugin_action_executed` event."""
    async with ctx.transaction() as tx:
        row = await repo.record_success(tx.session, ctx.auth.org_id, install_id)
        await tx.emit(EventType.PLUGIN_ACTION_EXECUTED, target_id=row.id, target_type="plugin_instance", metadata={
            "pluginName": name, "pluginVersion": row.version, "action": action, "executions": row.executions})


async def failed(ctx: WorkContext, install_id: Any, name: str, action: str, reason: str) -> PluginActionFailed:
    """Count the failure (suspending the install at the tenth in a row) and the error to raise."""
    suspension = f"suspended after {SUSPEND_AFTER_FAILURES} consecutive failures of its actions; the last: {reason}"
    async with ctx.transaction() as tx:
        row = await repo.record_failure(tx.session, ctx.auth.org_id, install_id, SUSPEND_AFTER_FAILURES, suspension)
        suspended_now = row.status == "suspended" and row.consecutive_failures == SUSPEND_AFTER_FAILURES
        await tx.emit(EventType.PLUGIN_ERROR_OCCURRED, target_id=row.id, target_type="plugin_instance", metadata={
            "pluginName": name, "pluginVersion": row.version, "action": action, "error": reason[:500],
            "consecutiveFailures": row.consecutive_failures})
        if suspended_now:
            await tx.emit(EventType.PLUGIN_DEACTIVATED, target_id=row.id, target_type="plugin_instance", metadata={
                "pluginName": name, "pluginVersion": row.version, "previousStatus": "active", "suspended": True,
                "reason": suspension[:1000]})
    if suspended_now:
        await ctx.call(THING_UPDATE, {"id": str(row.id), "status": "inactive"})
    return PluginActionFailed(f"{name} {action} failed: {reason}" + (f"; {name} is {suspension}" if suspended_now
                                                                     else ""),
                              {"failures": row.consecutive_failures, "suspended": row.status == "suspended"})
