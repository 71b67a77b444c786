"""Plugins' REST routes (served by the agents service): the registry, and the caller's org's installs of it.

`/v1/plugins` is the platform's registry (import: platform owners; list, read, search: any member).
`/v1/plugins/installed` is the caller's org's installs, each named by the plugin's npm name in the path
(`/v1/plugins/installed/@elizaos/plugin-weather/activate`): another org's install is not found, as an
unknown one is. Each route is one bus request on `shared.contracts.agents.plugins`'s models. A secret
setting is passed on as given and never echoed (replies name it in `secrets_set`).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from services.gateway.shapes import derived
from shared.contracts.agents.plugins import (
    PLUGIN_ACTIVATE,
    PLUGIN_CONFIGURE,
    PLUGIN_DEACTIVATE,
    PLUGIN_EXECUTE,
    PLUGIN_GET,
    PLUGIN_IMPORT,
    PLUGIN_INSTALL,
    PLUGIN_INSTALLED,
    PLUGIN_INSTANCE,
    PLUGIN_LIST,
    PLUGIN_SEARCH,
    PLUGIN_UNINSTALL,
    PLUGIN_UPDATE,
    Plugin,
    PluginActionResult,
    PluginConfigure,
    PluginExecute,
    PluginHits,
    PluginImport,
    PluginImported,
    PluginInstall,
    PluginInstallResult,
    PluginInstance,
    PluginInstancePage,
    PluginPage,
    PluginQuery,
    PluginSearch,
    PluginUninstalled,
)

SettingsBody = derived(PluginConfigure, "PluginSettingsBody", drop=("name",))
ActionBody = derived(PluginExecute, "PluginActionBody", drop=("name", "action"))

router = APIRouter(prefix="/v1/plugins", tags=["plugins"])


@router.post("/import", responses=WRITE)
async def import_registry(body: PluginImport, caller: Caller, bus: Bus) -> PluginImported:
    return await bus.request(PLUGIN_IMPORT, body, caller, timeout=600)


@router.get("", responses=READ)
async def list_plugins(query: Annotated[PluginQuery, Query()], caller: Caller, bus: Bus) -> PluginPage:
    return await bus.request(PLUGIN_LIST, query, caller)


@router.get("/search", responses=READ)
async def search_plugins(query: Annotated[PluginSearch, Query()], caller: Caller, bus: Bus) -> PluginHits:
    return await bus.request(PLUGIN_SEARCH, query, caller, timeout=60)


@router.get("/registry/{name:path}", responses=READ)
async def get_plugin(name: str, caller: Caller, bus: Bus) -> Plugin:
    return await bus.request(PLUGIN_GET, {"name": name}, caller)


@router.get("/installed", responses=READ)
async def list_installed(query: Annotated[PluginQuery, Query()], caller: Caller, bus: Bus) -> PluginInstancePage:
    return await bus.request(PLUGIN_INSTALLED, query, caller)


@router.post("/installed", status_code=201, responses=WRITE)
async def install_plugin(body: PluginInstall, caller: Caller, bus: Bus) -> PluginInstallResult:
    return await bus.request(PLUGIN_INSTALL, body, caller, timeout=60)


@router.patch("/installed/{name:path}/settings", responses=WRITE)
async def configure_plugin(name: str, body: SettingsBody, caller: Caller,  # type: ignore[valid-type]
                           bus: Bus) -> PluginInstance:
    return await bus.request(PLUGIN_CONFIGURE, {"name": name, **_body(body)}, caller)


@router.post("/installed/{name:path}/activate", responses=WRITE)
async def activate_plugin(name: str, caller: Caller, bus: Bus) -> PluginInstance:
    return await bus.request(PLUGIN_ACTIVATE, {"name": name}, caller, timeout=60)


@router.post("/installed/{name:path}/deactivate", responses=WRITE)
async def deactivate_plugin(name: str, caller: Caller, bus: Bus) -> PluginInstance:
    return await bus.request(PLUGIN_DEACTIVATE, {"name": name}, caller)


@router.post("/installed/{name:path}/update", responses=WRITE)
async def update_plugin(name: str, caller: Caller, bus: Bus) -> PluginInstance:
    return await bus.request(PLUGIN_UPDATE, {"name": name}, caller, timeout=60)


@router.post("/installed/{name:path}/actions/{action}", responses=WRITE)
async def execute_action(name: str, action: str, body: ActionBody, caller: Caller,  # type: ignore[valid-type]
                         bus: Bus) -> PluginActionResult:
    return await bus.request(PLUGIN_EXECUTE, {"name": name, "action": action, **_body(body)}, caller, timeout=60)


@router.get("/installed/{name:path}", responses=READ)
async def get_install(name: str, caller: Caller, bus: Bus) -> PluginInstance:
    return await bus.request(PLUGIN_INSTANCE, {"name": name}, caller)


@router.delete("/installed/{name:path}", responses=WRITE)
async def uninstall_plugin(name: str, caller: Caller, bus: Bus) -> PluginUninstalled:
    return await bus.request(PLUGIN_UNINSTALL, {"name": name}, caller)


def _body(body: Any) -> dict[str, Any]:
    return body.model_dump(mode="json")
