"""The plugin registry: import (platform owners), list, read and search by meaning (every org).

Importing reads the document first (the shipped sample, a URL, or the document given), validates every entry
(one bad entry refuses the whole document, naming it), then for each new or changed plugin writes the graph
(`elizaos_plugin` thing, a `plugin_action` thing per action with `plugin_provides`, `plugin_depends_on` between
plugins) and a knowledge document (what search ranks), and finally keeps the manifest here with a
`plugin_discovered` event. Registry things live in the importer's org, the platform org; reads of the registry are
plain reads of this service's catalogue, so any org can browse and search it.
"""

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from services.agents import repository_plugins as repo
from services.agents.models_plugins import PluginRow
from services.agents.plugins_registry import read_registry
from services.agents.tools_access import agents_identity
from shared.contracts.agents.plugins import (
    Plugin,
    PluginAction,
    PluginHit,
    PluginHits,
    PluginImport,
    PluginImported,
    PluginNotFound,
    PluginPage,
    PluginQuery,
    PluginRef,
    PluginRegistryInvalid,
    PluginSearch,
)
from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE, THING_UPDATE
from shared.contracts.knowledge import ITEM_ADD, ITEM_DELETE, ITEM_QUERY, SEARCH
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

SAMPLE_REGISTRY = Path(__file__).parent / "plugin_registry" / "sample.json"
_MAX_DOCUMENT = 5_000_000
_EMBED_TIMEOUT = 120.0  # embedding on a busy CPU takes its time; a re-import after a timeout resumes idempotently


def to_plugin(row: PluginRow) -> Plugin:
    m = row.manifest
    return Plugin(
        id=row.id, name=row.name, version=row.version, description=m["description"], repository=m["repository"],
        runtime=m["runtime"], installable=row.installable, reason=m.get("reason"), dependencies=m["dependencies"],
        settings_schema=m["settings"], secret_settings=m["secrets"],
        actions=[PluginAction(name=a["name"], description=a["description"], parameters=a["parameters"])
                 for a in m["actions"]],
        prompts=[p["name"] for p in m["prompts"]], tags=m["tags"], thing_types=sorted(m.get("thing_types") or {}),
        mcp_servers=[s["name"] for s in m.get("mcp_servers") or []], imported_at=row.imported_at)


async def load(ctx: WorkContext, name: str) -> PluginRow:
    row = await repo.plugin(ctx.session, name)
    if row is None:
        raise PluginNotFound(f"no plugin {name} in the registry", {"plugin": name})
    return row


async def _document(payload: PluginImport) -> Any:
    if payload.registry is not None:
        return payload.registry
    if payload.sample:
        return json.loads(SAMPLE_REGISTRY.read_text())
    try:
        async with httpx.AsyncClient(follow_redirects=True, timeout=20.0) as client:
            response = await client.get(payload.url or "")
    except httpx.HTTPError as error:
        raise PluginRegistryInvalid(f"the registry URL could not be read: {type(error).__name__}",
                                    {"url": payload.url}) from None
    if response.status_code != 200 or len(response.content) > _MAX_DOCUMENT:
        raise PluginRegistryInvalid(f"the registry URL answered {response.status_code}"
                                    f"{' (too large)' if response.status_code == 200 else ''}", {"url": payload.url})
    try:
        return response.json()
    except ValueError:
        raise PluginRegistryInvalid("the registry URL did not answer JSON", {"url": payload.url}) from None


def _properties(m: dict[str, Any]) -> dict[str, Any]:
    return {"pluginMetadata": {"name": m["name"], "version": m["version"], "settings": {}},
            "description": m["description"], "repository": m["repository"], "runtime": m["runtime"],
            "installable": m["runtime"] == "http", "npmPackage": m["name"], "dependencies": m["dependencies"],
            "tags": m["tags"]}


def _search_text(m: dict[str, Any]) -> str:
    actions = "; ".join(f"{a['name']}: {a['description']}" for a in m["actions"])
    return (f"{m['name']} {m['version']}. {m['description']} Tags: {', '.join(m['tags'])}. "
            f"Actions: {actions or 'none'}. Runtime: {m['runtime']}.")


async def _embed(ctx: WorkContext, thing_id: UUID, m: dict[str, Any], replace: bool) -> None:
    if replace:
        old = await ctx.call(ITEM_QUERY, {"source_thing_id": str(thing_id), "limit": 100})
        for item in old.items:
            await ctx.call(ITEM_DELETE, {"id": str(item.id)})
    await ctx.call(ITEM_ADD, {"knowledge_type": "document", "text": _search_text(m), "source_thing_id": str(thing_id),
                              "source_field": "description", "metadata": {"plugin": m["name"]}}, timeout=_EMBED_TIMEOUT)


async def _create_things(ctx: WorkContext, m: dict[str, Any]) -> UUID:
    thing = await ctx.call(THING_CREATE, {"type": "elizaos_plugin", "name": m["name"], "status": "published",
                                          "idempotency_key": f"agents.plugin-registry:{m['name']}",
                                          "properties": _properties(m)})
    for action in m["actions"]:
        action_thing = await ctx.call(THING_CREATE, {
            "type": "plugin_action", "name": f"{m['name']}#{action['name']}", "status": "published",
            "idempotency_key": f"agents.plugin-registry:{m['name']}#{action['name']}",
            "properties": {"pluginMetadata": {"name": action["name"], "version": m["version"]},
                           "description": action["description"], "parameters": action["parameters"]}})
        await ctx.call(CONNECTION_CREATE, {"from_id": str(thing.id), "to_id": str(action_thing.id),
                                           "type": "plugin_provides", "metadata": {"action": action["name"]}})
    return thing.id


async def import_registry(ctx: WorkContext, payload: PluginImport) -> PluginImported:
    require(ctx.auth, "platform", "plugins")
    manifests = read_registry(await _document(payload))
    async with ctx.transaction() as tx:
        existing = await repo.plugins_named(tx.session, [m["name"] for m in manifests])
    created, updated, unchanged, ids = [], [], [], {name: row.id for name, row in existing.items()}
    for m in manifests:
        row = existing.get(m["name"])
        if row is not None and row.manifest == m:
            unchanged.append(m["name"])
            continue
        if row is None:
            ids[m["name"]] = await _create_things(ctx, m)
            created.append(m["name"])
        else:
            await ctx.call(THING_UPDATE, {"id": str(row.id), "properties": _properties(m)})
            updated.append(m["name"])
        await _embed(ctx, ids[m["name"]], m, replace=row is not None)
        async with ctx.transaction() as tx:
            await repo.upsert_plugin(tx.session, {"name": m["name"], "id": ids[m["name"]], "org_id": ctx.auth.org_id,
                                                  "version": m["version"], "manifest": m,
                                                  "installable": m["runtime"] == "http"})
            await tx.emit(EventType.PLUGIN_DISCOVERED, target_id=ids[m["name"]], target_type="elizaos_plugin",
                          metadata={"pluginName": m["name"], "pluginVersion": m["version"],
                                    "action": "created" if row is None else "updated", "runtime": m["runtime"]})
    for m in manifests:  # once every plugin of the document has its thing
        if m["name"] in created:
            for dep, spec in m["dependencies"].items():
                if dep in ids:
                    await ctx.call(CONNECTION_CREATE, {"from_id": str(ids[m["name"]]), "to_id": str(ids[dep]),
                                                       "type": "plugin_depends_on", "metadata": {"versionRange": spec}})
    return PluginImported(created=created, updated=updated, unchanged=unchanged)


async def get(ctx: WorkContext, ref: PluginRef) -> Plugin:
    require(ctx.auth, "plugins", "read")
    return to_plugin(await load(ctx, ref.name))


async def list_page(ctx: WorkContext, query: PluginQuery) -> PluginPage:
    require(ctx.auth, "plugins", "list")
    rows = await repo.list_plugins(ctx.session, text=query.text, installable=query.installable, cursor=query.cursor,
                                   limit=query.limit)
    return PluginPage(plugins=[to_plugin(r) for r in rows],
                      next_cursor=rows[-1].name if len(rows) == query.limit else None)


async def search(ctx: WorkContext, payload: PluginSearch) -> PluginHits:
    """Registry plugins ranked by meaning: the knowledge service searches the platform org's plugin documents."""
    require(ctx.auth, "plugins", "list")
    async with ctx.transaction() as tx:
        any_plugin = await repo.list_plugins(tx.session, text=None, installable=None, cursor=None, limit=1)
    if not any_plugin:
        return PluginHits(hits=[])
    platform = agents_identity(any_plugin[0].org_id, on_behalf_of=ctx.auth.actor_id)
    found = await ctx.call(SEARCH, {"query": payload.query, "k": min(payload.k * 3, 100),
                                    "filters": {"source_thing_types": ["elizaos_plugin"]}}, auth=platform,
                           timeout=_EMBED_TIMEOUT)
    scores: dict[UUID, float] = {}
    for hit in found.hits:
        if hit.item.source_thing_id is not None:
            scores[hit.item.source_thing_id] = max(scores.get(hit.item.source_thing_id, hit.score), hit.score)
    async with ctx.transaction() as tx:
        rows = await repo.plugins_by_ids(tx.session, list(scores))
    ranked = sorted(rows.values(), key=lambda r: scores[r.id], reverse=True)[:payload.k]
    return PluginHits(hits=[PluginHit(plugin=to_plugin(r), score=scores[r.id]) for r in ranked])
