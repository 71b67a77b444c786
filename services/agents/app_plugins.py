"""Subscribers for the plugin registry and an org's plugin installs: payload -> service call -> result."""

from services.agents import service_plugins, service_plugins_execute, service_plugins_install
from services.agents.state import of as state_of
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
    PluginRef,
    PluginSearch,
    PluginUninstalled,
    PluginUpdate,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

plugins_router = ServiceRouter("agents")


@plugins_router.handler(PLUGIN_IMPORT, transactional=False)
async def import_registry(ctx: WorkContext, payload: PluginImport) -> PluginImported:
    return await service_plugins.import_registry(ctx, payload)


@plugins_router.handler(PLUGIN_LIST)
async def list_plugins(ctx: WorkContext, payload: PluginQuery) -> PluginPage:
    return await service_plugins.list_page(ctx, payload)


@plugins_router.handler(PLUGIN_GET)
async def get_plugin(ctx: WorkContext, payload: PluginRef) -> Plugin:
    return await service_plugins.get(ctx, payload)


@plugins_router.handler(PLUGIN_SEARCH, transactional=False)
async def search_plugins(ctx: WorkContext, payload: PluginSearch) -> PluginHits:
    return await service_plugins.search(ctx, payload)


@plugins_router.handler(PLUGIN_INSTALL, transactional=False)
async def install_plugin(ctx: WorkContext, payload: PluginInstall) -> PluginInstallResult:
    return await service_plugins_install.install(ctx, payload)


@plugins_router.handler(PLUGIN_INSTALLED)
async def list_installed(ctx: WorkContext, payload: PluginQuery) -> PluginInstancePage:
    return await service_plugins_install.installed(ctx, payload)


@plugins_router.handler(PLUGIN_INSTANCE)
async def get_install(ctx: WorkContext, payload: PluginRef) -> PluginInstance:
    return await service_plugins_install.instance(ctx, payload)


@plugins_router.handler(PLUGIN_CONFIGURE, transactional=False)
async def configure_plugin(ctx: WorkContext, payload: PluginConfigure) -> PluginInstance:
    return await service_plugins_install.configure(ctx, payload)


@plugins_router.handler(PLUGIN_ACTIVATE, transactional=False)
async def activate_plugin(ctx: WorkContext, payload: PluginRef) -> PluginInstance:
    return await service_plugins_install.activate(ctx, payload)


@plugins_router.handler(PLUGIN_DEACTIVATE, transactional=False)
async def deactivate_plugin(ctx: WorkContext, payload: PluginRef) -> PluginInstance:
    return await service_plugins_install.deactivate(ctx, payload)


@plugins_router.handler(PLUGIN_UPDATE, transactional=False)
async def update_plugin(ctx: WorkContext, payload: PluginUpdate) -> PluginInstance:
    return await service_plugins_install.update(ctx, payload)


@plugins_router.handler(PLUGIN_UNINSTALL, transactional=False)
async def uninstall_plugin(ctx: WorkContext, payload: PluginRef) -> PluginUninstalled:
    return await service_plugins_install.uninstall(ctx, payload)


@plugins_router.handler(PLUGIN_EXECUTE, transactional=False)
async def execute_action(ctx: WorkContext, payload: PluginExecute) -> PluginActionResult:
    return await service_plugins_execute.execute(ctx, payload, state_of(ctx.runtime).http)
