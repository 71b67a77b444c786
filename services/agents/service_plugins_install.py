"""An org's plugin installs: install (with its dependencies), configure, activate, deactivate, update, uninstall.

Each step is the seed's event (`plugin_installed`, `plugin_configured`, ...) and keeps the seed's connections: an
install is a `plugin_instance` thing of the org, `plugin_installed_in` the org, `plugin_depends_on` the installs it
needs. Installing resolves the dependencies first (plugins_resolve.py: a cycle or a range that the version there is
does not satisfy is refused with its path), counts one install against the org's `plugin_install` rate limit
(tenancy), then installs the missing dependencies deepest first and the plugin last; its prompts become the org's
prompts, its thing-type schemas the org's (service_plugins_gives.py; removed at uninstall). A secret
setting (the schema's `writeOnly` properties) is sealed and never leaves this service: not in a
reply, an event, or the graph. No transaction is held across a call to another service.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import jsonschema

from services.agents import plugin_secrets, repository_plugins as repo
from services.agents.models_plugins import InstallRow
from services.agents.plugins_registry import specifier_of, version_of
from services.agents.plugins_resolve import closure, resolve
from services.agents.service_plugins import load as load_plugin
from services.agents.service_plugins_gives import remove_type_schemas, set_type_schemas
from services.agents.service_prompts import archive_prompt, create_prompt
from shared.contracts.agents import PromptCreate
from shared.contracts.agents.plugins import (
    INSTALL_RATE_OPERATION,
    PluginAlreadyInstalled,
    PluginConfigure,
    PluginInstall,
    PluginInstallResult,
    PluginInstance,
    PluginInstancePage,
    PluginNotInstalled,
    PluginQuery,
    PluginRef,
    PluginSettingsInvalid,
    PluginStateConflict,
    PluginUninstalled,
    PluginUpdate,
    PluginVersionConflict,
)
from shared.contracts.graph import CONNECTION_CREATE, IDENTITY_BACKFILL, THING_ARCHIVE, THING_CREATE, THING_UPDATE
from shared.contracts.tenancy import RATE_HIT
from shared.kernel.errors import NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_THING_STATUS = {"installed": "draft", "active": "active", "inactive": "inactive", "suspended": "inactive"}


def to_instance(row: InstallRow, installs: Sequence[InstallRow] = ()) -> PluginInstance:
    return PluginInstance(
        id=row.id, plugin=row.plugin, version=row.version, status=row.status,  # type: ignore[arg-type]
        settings=row.settings,
        secrets_set=list(row.secrets_set), dependencies=list(row.dependencies),
        dependency_of=sorted(r.plugin for r in installs if row.plugin in r.dependencies), explicit=row.explicit,
        executions=row.executions, consecutive_failures=row.consecutive_failures,
        suspended_reason=row.suspended_reason, prompt_ids=list(row.prompt_ids), created_at=row.created_at,
        updated_at=row.updated_at)


async def load(ctx: WorkContext, name: str, *, for_update: bool = False) -> InstallRow:
    row = await repo.install(ctx.session, ctx.auth.org_id, name, for_update=for_update)
    if row is None:
        raise PluginNotInstalled(f"{name} is not installed in this organization", {"plugin": name})
    return row


def _instance_properties(m: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {"pluginMetadata": {"name": m["name"], "version": m["version"], "settings": settings},
            "pluginName": m["name"], "repository": m["repository"]}


async def _fetcher(ctx: WorkContext) -> Any:
    async def fetch(names: list[str]) -> dict[str, dict[str, Any]]:
        async with ctx.transaction() as tx:
            return {name: row.manifest for name, row in (await repo.plugins_named(tx.session, names)).items()}
    return fetch


async def _link(ctx: WorkContext, payload: dict[str, Any]) -> None:
    """A connection of an install; the org's own thing may not be mirrored into the graph yet: mirror it first."""
    try:
        await ctx.call(CONNECTION_CREATE, payload)
    except NotFound:
        await ctx.call(IDENTITY_BACKFILL, {})
        await ctx.call(CONNECTION_CREATE, payload)


async def _install_one(ctx: WorkContext, m: dict[str, Any], plugin_id: UUID, *, explicit: bool,
                       ids: dict[str, UUID]) -> InstallRow:
    thing = await ctx.call(THING_CREATE, {"type": "plugin_instance", "name": m["name"], "status": "draft",
                                          "idempotency_key": f"agents.plugin-install:{uuid7()}",
                                          "properties": _instance_properties(m, {})})
    thing_types = await set_type_schemas(ctx, m)
    async with ctx.transaction() as tx:
        prompt_ids = [(await create_prompt(tx, PromptCreate(name=p["name"], step=p["step"], template=p["template"],
                                                            description=p["description"][:2000],
                                                            tags=["plugin"]))).id for p in m["prompts"]]
        row = await repo.insert_install(tx.session, {
            "id": thing.id, "org_id": ctx.auth.org_id, "plugin": m["name"], "version": m["version"],
            "dependencies": sorted(m["dependencies"]), "explicit": explicit, "prompt_ids": prompt_ids,
            "created_by": ctx.auth.actor_id})
        if row is None:
            raise PluginAlreadyInstalled(f"{m['name']} was installed meanwhile", {"plugin": m["name"]})
        await tx.emit(EventType.PLUGIN_INSTALLED, target_id=row.id, target_type="plugin_instance", metadata={
            "pluginId": str(plugin_id), "pluginName": m["name"], "pluginVersion": m["version"], "explicit": explicit,
            "dependencies": sorted(m["dependencies"]), "prompts": [str(p) for p in prompt_ids],
            "thingTypes": thing_types, "mcpServers": [s["name"] for s in m.get("mcp_servers") or []]})
    await _link(ctx, {"from_id": str(row.id), "to_id": str(ctx.auth.org_id), "type": "plugin_installed_in",
                      "metadata": {"pluginName": m["name"], "pluginVersion": m["version"]}})
    for dep, spec in sorted(m["dependencies"].items()):
        await _link(ctx, {"from_id": str(row.id), "to_id": str(ids[dep]), "type": "plugin_depends_on",
                          "metadata": {"pluginName": dep, "versionRange": spec}})
    return row


async def _install_chain(ctx: WorkContext, order: list[str], manifests: dict[str, dict[str, Any]],
                         rows: list[InstallRow], root: str) -> list[InstallRow]:
    async with ctx.transaction() as tx:
        plugin_ids = {name: row.id for name, row in (await repo.plugins_named(tx.session, order)).items()}
    ids = {r.plugin: r.id for r in rows}
    done = []
    for name in order:
        row = await _install_one(ctx, manifests[name], plugin_ids[name], explicit=name == root, ids=ids)
        ids[name] = row.id
        done.append(row)
    return done


async def install(ctx: WorkContext, payload: PluginInstall) -> PluginInstallResult:
    require(ctx.auth, "plugins", "install")
    async with ctx.transaction() as tx:
        rows = await repo.installs(tx.session, ctx.auth.org_id)
    if any(r.plugin == payload.name for r in rows):
        raise PluginAlreadyInstalled(f"{payload.name} is installed already", {"plugin": payload.name})
    manifests = await closure(payload.name, await _fetcher(ctx))
    order = resolve(payload.name, payload.version, manifests, {r.plugin: r.version for r in rows})
    await ctx.call(RATE_HIT, {"operation": INSTALL_RATE_OPERATION})
    done = await _install_chain(ctx, order, manifests, rows, payload.name)
    everything = [*rows, *done]
    return PluginInstallResult(install=to_instance(done[-1], everything),
                               dependencies_installed=[to_instance(r, everything) for r in done[:-1]])


def _check_settings(m: dict[str, Any], values: dict[str, Any]) -> None:
    """The settings against the plugin's schema; the message never quotes a value (it may be a secret)."""
    known = set(m["settings"].get("properties") or {})
    unknown = sorted(set(values) - known) if known else []
    if unknown:
        raise PluginSettingsInvalid(f"{m['name']} has no settings {', '.join(unknown)}", {"unknown": unknown})
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(m["settings"]).iter_errors(values))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "settings"
        message = error.message if error.validator in ("required", "additionalProperties") else \
            f"{where} does not satisfy `{error.validator}` of the plugin's settings schema"
        raise PluginSettingsInvalid(message, {"setting": where, "rule": error.validator})


async def configure(ctx: WorkContext, payload: PluginConfigure) -> PluginInstance:
    require(ctx.auth, "plugins", "configure")
    async with ctx.transaction() as tx:
        row = await load(tx, payload.name, for_update=True)
        m = (await load_plugin(tx, row.plugin)).manifest
        secret_names = set(m["secrets"])
        merged = {**row.settings, **await plugin_secrets.unseal(ctx.runtime, row.org_id, row.id, row.secrets_sealed)}
        for key, value in payload.settings.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        _check_settings(m, merged)
        secrets = {k: v for k, v in merged.items() if k in secret_names}
        plain = {k: v for k, v in merged.items() if k not in secret_names}
        row = await repo.update_install(tx.session, ctx.auth.org_id, row.id, {
            "settings": plain, "secrets_set": sorted(secrets),
            "secrets_sealed": await plugin_secrets.seal(ctx.runtime, row.org_id, row.id, secrets)})
        await tx.emit(EventType.PLUGIN_CONFIGURED, target_id=row.id, target_type="plugin_instance", metadata={
            "pluginName": row.plugin, "pluginVersion": row.version, "changed": sorted(payload.settings),
            "secretsSet": sorted(secrets)})
        installs = await repo.installs(tx.session, ctx.auth.org_id)
    await ctx.call(THING_UPDATE, {"id": str(row.id), "properties": _instance_properties(m, plain)})
    return to_instance(row, installs)


async def _set_status(ctx: WorkContext, row: InstallRow, status: str, event: str, **metadata: Any) -> InstallRow:
    before = row.status
    async with ctx.transaction() as tx:
        row = await repo.update_install(tx.session, ctx.auth.org_id, row.id, {
            "status": status, **({"consecutive_failures": 0, "suspended_reason": None} if status == "active" else {})})
        await tx.emit(event, target_id=row.id, target_type="plugin_instance", metadata={
            "pluginName": row.plugin, "pluginVersion": row.version, "previousStatus": before, **metadata})
    if _THING_STATUS[before] != _THING_STATUS[status]:
        await ctx.call(THING_UPDATE, {"id": str(row.id), "status": _THING_STATUS[status]})
    return row


async def _activate(ctx: WorkContext, name: str, path: list[str]) -> InstallRow:
    async with ctx.transaction() as tx:
        row = await load(tx, name)
        m = (await load_plugin(tx, name)).manifest
        secrets = await plugin_secrets.unseal(ctx.runtime, row.org_id, row.id, row.secrets_sealed)
    if row.status == "active":
        return row
    try:
        _check_settings(m, {**row.settings, **secrets})
    except PluginSettingsInvalid as error:
        raise PluginSettingsInvalid(f"configure {name} first: {error.message}", error.details) from None
    for dep in row.dependencies:
        await _activate(ctx, dep, [*path, name])
    return await _set_status(ctx, row, "active", EventType.PLUGIN_ACTIVATED,
                             **({"activatedFor": " -> ".join(path)} if path else {}))


async def activate(ctx: WorkContext, ref: PluginRef) -> PluginInstance:
    """Active, with its dependencies (each activated first when it is not); a suspended install comes back with its
    failure streak reset."""
    require(ctx.auth, "plugins", "activate")
    row = await _activate(ctx, ref.name, [])
    async with ctx.transaction() as tx:
        return to_instance(row, await repo.installs(tx.session, ctx.auth.org_id))


async def deactivate(ctx: WorkContext, ref: PluginRef) -> PluginInstance:
    require(ctx.auth, "plugins", "deactivate")
    async with ctx.transaction() as tx:
        row = await load(tx, ref.name)
    if row.status not in ("active", "suspended"):
        raise PluginStateConflict(f"{ref.name} is {row.status}, not active", {"status": row.status})
    row = await _set_status(ctx, row, "inactive", EventType.PLUGIN_DEACTIVATED, reason="deactivated on request")
    async with ctx.transaction() as tx:
        return to_instance(row, await repo.installs(tx.session, ctx.auth.org_id))


async def installed(ctx: WorkContext, query: PluginQuery) -> PluginInstancePage:
    require(ctx.auth, "plugins", "list")
    rows = await repo.installs(ctx.session, ctx.auth.org_id, text=query.text)
    everything = await repo.installs(ctx.session, ctx.auth.org_id) if query.text else rows
    return PluginInstancePage(installs=[to_instance(r, everything) for r in rows])


async def instance(ctx: WorkContext, ref: PluginRef) -> PluginInstance:
    require(ctx.auth, "plugins", "read")
    return to_instance(await load(ctx, ref.name), await repo.installs(ctx.session, ctx.auth.org_id))


async def update(ctx: WorkContext, payload: PluginUpdate) -> PluginInstance:
    """To the registry's version: every installed plugin that needs this one must admit it, and the new version's
    dependencies are installed when missing (with the same checks as an install)."""
    require(ctx.auth, "plugins", "update")
    async with ctx.transaction() as tx:
        row = await load(tx, payload.name)
        rows = await repo.installs(tx.session, ctx.auth.org_id)
    manifests = await closure(payload.name, await _fetcher(ctx))
    m = manifests[payload.name]
    if m["version"] == row.version:
        return to_instance(row, rows)
    dependents = await (await _fetcher(ctx))([r.plugin for r in rows if payload.name in r.dependencies])
    for other, other_manifest in sorted(dependents.items()):
        needs = other_manifest["dependencies"].get(payload.name, "*")
        if not specifier_of(needs).contains(version_of(m["version"]), prereleases=True):
            raise PluginVersionConflict(
                f"{other} -> {payload.name}: {other} needs {payload.name} {needs}, but the update is to "
                f"{m['version']}", {"path": f"{other} -> {payload.name}", "range": needs, "version": m["version"]})
    others = [r for r in rows if r.plugin != payload.name]
    order = resolve(payload.name, None, manifests, {r.plugin: r.version for r in others})
    await _install_chain(ctx, order[:-1], manifests, others, "")
    await set_type_schemas(ctx, m)
    previous = row.version
    async with ctx.transaction() as tx:
        row = await repo.update_install(tx.session, ctx.auth.org_id, row.id, {
            "version": m["version"], "dependencies": sorted(m["dependencies"])})
        await tx.emit(EventType.PLUGIN_UPDATED, target_id=row.id, target_type="plugin_instance", metadata={
            "pluginName": row.plugin, "pluginVersion": row.version, "previousVersion": previous})
        rows = await repo.installs(tx.session, ctx.auth.org_id)
    await ctx.call(THING_UPDATE, {"id": str(row.id), "properties": _instance_properties(m, row.settings)})
    return to_instance(row, rows)


async def uninstall(ctx: WorkContext, ref: PluginRef) -> PluginUninstalled:
    """Refused while another install needs it; its prompts are archived, its thing archived (the graph ends it)."""
    require(ctx.auth, "plugins", "uninstall")
    async with ctx.transaction() as tx:
        row = await load(tx, ref.name, for_update=True)
        needed_by = sorted(r.plugin for r in await repo.installs(tx.session, ctx.auth.org_id)
                           if ref.name in r.dependencies)
        if needed_by:
            raise PluginStateConflict(f"{ref.name} is needed by {', '.join(needed_by)}: uninstall those first",
                                      {"needed_by": needed_by})
        for prompt_id in row.prompt_ids:
            await archive_prompt(tx, prompt_id)
        await repo.delete_install(tx.session, ctx.auth.org_id, row.id)
        await tx.emit(EventType.PLUGIN_UNINSTALLED, target_id=row.id, target_type="plugin_instance", metadata={
            "pluginName": row.plugin, "pluginVersion": row.version})
    await ctx.call(THING_ARCHIVE, {"id": str(row.id)})
    async with ctx.transaction() as tx:
        m = (await load_plugin(tx, row.plugin)).manifest
    return PluginUninstalled(plugin=row.plugin, id=row.id, type_schemas=await remove_type_schemas(ctx, m))
