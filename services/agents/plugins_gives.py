"""Reading what a plugin gives an org besides HTTP actions and prompts: thing types' property schemas, MCP servers.

A registry entry's `one.thing_types` maps ontology thing types to JSON schemas: installing the plugin sets each as
the org's property schema of that type (graph `graph.type_schema.set`, owned by `plugin:<name>`, so another
plugin or a pack cannot take it over), uninstalling removes them (the graph keeps a schema while live things of
its type exist, and the reply says so). `one.mcp_servers` (`[{"name", "url"}]`, Streamable HTTP) are tool
sources of the org while the install is active: their tools are offered as `plugin__<short>__<server>__<tool>`
(plugins_tools.py) and called through tools_custom's MCP client. Pure: service_plugins_gives.py acts on them.
"""

import re
from typing import Any

from shared.contracts.agents.plugins import PluginRegistryInvalid
from shared.kernel.ontology import is_thing_type

_SERVER = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,19}$")
_URL = re.compile(r"^https?://[^\s/{}]+[^\s{}]*$")


def _invalid(entry: str, field: str, problem: str) -> PluginRegistryInvalid:
    return PluginRegistryInvalid(f"registry entry {entry!r}: {field} {problem}", {"entry": entry, "field": field})


def thing_types(name: str, one: dict[str, Any], schema: Any) -> dict[str, dict[str, Any]]:
    """`one.thing_types` validated: ontology thing types -> JSON schemas (`schema` checks one)."""
    declared = one.get("thing_types") or {}
    if not isinstance(declared, dict):
        raise _invalid(name, "one.thing_types", "is not an object of thing type -> JSON schema")
    for thing_type in declared:
        if not isinstance(thing_type, str) or not re.match(r"^[a-z][a-z0-9_]{0,60}$", thing_type) \
                or not is_thing_type(thing_type):
            raise _invalid(name, f"one.thing_types.{thing_type}", "is not an ontology thing type")
    return {thing_type: schema(name, f"one.thing_types.{thing_type}", s) for thing_type, s in declared.items()}


def mcp_servers(name: str, one: dict[str, Any]) -> list[dict[str, str]]:
    """`one.mcp_servers` validated: each a short name and an http(s) URL (Streamable HTTP)."""
    servers = one.get("mcp_servers") or []
    if not isinstance(servers, list) or len(servers) > 5:
        raise _invalid(name, "one.mcp_servers", "is not a list of at most 5 servers")
    found = []
    for i, server in enumerate(servers):
        field = f"one.mcp_servers[{i}]"
        if not isinstance(server, dict) or not _SERVER.match(str(server.get("name", ""))) \
                or "__" in str(server.get("name")):
            raise _invalid(name, f"{field}.name", "is missing or not a short identifier (letters, digits, _, -)")
        if not isinstance(server.get("url"), str) or not _URL.match(server["url"]):
            raise _invalid(name, f"{field}.url", "is not an http(s) URL")
        found.append({"name": server["name"], "url": server["url"]})
    if len({s["name"] for s in found}) != len(found):
        raise _invalid(name, "one.mcp_servers", "names a server twice")
    return found
