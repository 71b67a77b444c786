"""Which tools an agent may use, as whom, and what the model may not set or see (seed 001's tool permissions).

A tool is offered to the model when the config names it in `tools` (an MCP server's tools come with the
server). With no `permissions` at all, every offered tool runs as the caller with the caller's rights;
once an agent has permissions, a tool runs only if one matches it (first match wins) and allows its action.
A refusal is not an exception for the run: the loop reports it to the model as the tool's result.

Whatever the permission, a tool's bus request carries the run's org: the model can name ids, never an org.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from uuid import UUID

from shared.contracts.agents import IdentityMode
from shared.contracts.agents.external import EXTERNAL_TOOL_PREFIX
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden
from shared.runtime.context import service_identity

AGENT_GRANTS = (
    "things:*", "connections:*", "events:create", "events:read", "events:list", "knowledge:read", "knowledge:list",
    "knowledge:create", "jobs:create", "jobs:read", "jobs:list", "quotas:consume", "quotas:release", "agents:*",
)
"""What the agents service's own identity may do in an org: a tool in `agent` identity mode (narrowed by its
permission), and the service's bookkeeping (quota, embedding messages, the `delegated` connection)."""


def agents_identity(org_id: UUID, on_behalf_of: UUID | None = None) -> AuthContext:
    """The agents service's own identity in the org, its work attributed to `on_behalf_of` (a person, an agent),
    or to the service itself (giving back a run's unused inference units)."""
    return service_identity("agents", org_id, AGENT_GRANTS, on_behalf_of=on_behalf_of)


class ToolRefused(Forbidden):
    """The agent may not use this tool (or not this way); reported to the model, never raised to the caller."""

    code = "tool_forbidden"


@dataclass(frozen=True, slots=True)
class Grant:
    """A tool call allowed: as whom, and what to hide from and refuse to the model."""

    auth: AuthContext
    denied_fields: frozenset[str]
    thing_types: frozenset[str]

    def check_type(self, thing_type: str | None) -> None:
        if self.thing_types and thing_type not in self.thing_types:
            raise ToolRefused(f"this agent may not touch things of type {thing_type!r}",
                              {"allowed_types": sorted(self.thing_types)})

    def check_fields(self, arguments: dict[str, Any]) -> None:
        """Refuse arguments that set or filter on a denied field."""
        named = set((arguments.get("properties") or {}).keys()) | set((arguments.get("metadata") or {}).keys())
        named |= {str(f.get("path", "")).split(".")[0] for f in arguments.get("where") or [] if isinstance(f, dict)}
        denied = named & self.denied_fields
        if denied:
            raise ToolRefused("this agent may not set or filter on these fields", {"fields": sorted(denied)})

    def mask(self, value: Any) -> Any:
        """The value without the denied fields, at any depth (a thing's properties, an event's metadata)."""
        if not self.denied_fields:
            return value
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items() if k not in self.denied_fields}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value


def authorize(config: dict[str, Any], tool: str, action: str, run_auth: AuthContext, agent_id: UUID) -> Grant:
    """The grant for calling `tool` (doing `action`) in this run, or `ToolRefused`."""
    if not _offered(config, tool):
        raise ToolRefused(f"the agent has no tool {tool!r}", {"tool": tool})
    permissions = config.get("permissions") or []
    if not permissions:
        return Grant(run_auth, frozenset(), frozenset())
    permission = next((p for p in permissions if fnmatchcase(tool, p["tool"])), None)
    if permission is None:
        raise ToolRefused(f"no permission of this agent covers the tool {tool!r}", {"tool": tool})
    actions = permission.get("actions") or ["*"]
    if not any(fnmatchcase(action, allowed) for allowed in actions):
        raise ToolRefused(f"this agent may not {action} with {tool!r}", {"tool": tool, "action": action,
                                                                         "allowed_actions": actions})
    auth = run_auth
    if permission.get("identity") == IdentityMode.AGENT.value:
        auth = agents_identity(run_auth.org_id, agent_id)
    return Grant(auth, frozenset(permission.get("denied_fields") or []), frozenset(permission.get("thing_types") or []))


def _offered(config: dict[str, Any], tool: str) -> bool:
    if tool in (config.get("tools") or []):
        return True
    if tool.startswith(EXTERNAL_TOOL_PREFIX):  # an external agent's tool comes with its slug in `delegates_to`
        return tool.removeprefix(EXTERNAL_TOOL_PREFIX) in (config.get("delegates_to") or [])
    server, sep, name = tool.partition("__")
    return bool(sep) and any(s["name"] == server and (not s.get("tools") or name in s["tools"])
                             for s in config.get("mcp_servers") or [])
