"""A plugin's thing-type property schemas put to work: set in the org (graph) at install and update, removed at
uninstall (plugins_gives.py reads them from the registry entry; plugins_mcp.py runs its MCP servers' tools).
"""

import re
from typing import Any

from shared.contracts.graph.schemas import TYPE_SCHEMA_REMOVE, TYPE_SCHEMA_SET, TypeSchemaRemove, TypeSchemaSet
from shared.runtime.context import WorkContext


def source_of(plugin: str) -> str:
    """The graph's owner name of a plugin's schemas: `plugin:<npm name>` (`@elizaos/plugin-x` -> elizaos.plugin-x)."""
    return "plugin:" + re.sub(r"[^a-z0-9_.-]", "-", plugin.lower().removeprefix("@").replace("/", "."))[:80]


async def set_type_schemas(ctx: WorkContext, m: dict[str, Any]) -> list[str]:
    """The plugin's thing-type schemas set in the org; the types set."""
    for thing_type, schema in sorted((m.get("thing_types") or {}).items()):
        await ctx.call(TYPE_SCHEMA_SET, TypeSchemaSet(type=thing_type, properties_schema=schema,
                                                      source=source_of(m["name"]),
                                                      description=f"Set by the plugin {m['name']} {m['version']}."))
    return sorted(m.get("thing_types") or {})


async def remove_type_schemas(ctx: WorkContext, m: dict[str, Any]) -> list[dict[str, Any]]:
    """The plugin's thing-type schemas removed from the org: each type's outcome (`kept`, with why, while live things
    of the type exist)."""
    outcomes = []
    for thing_type in sorted(m.get("thing_types") or {}):
        removal = await ctx.call(TYPE_SCHEMA_REMOVE, TypeSchemaRemove(type=thing_type, source=source_of(m["name"])))
        outcomes.append(removal.model_dump(mode="json"))
    return outcomes
