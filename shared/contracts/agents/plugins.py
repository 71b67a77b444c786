"""Plugins (issue #25, seed 004): the platform's plugin registry and each org's installs of its plugins.

The registry is the platform's: a platform owner imports an elizaOS registry document (`generated-registry.json`
shape: `{"registry": {"<npm name>": {"git": {"repo", "v1": {"version"}}, "npm": {...}, "supports": {...}}}}`, each
entry optionally carrying a `one` section with what the platform can use of it: description, runtime,
dependencies with version ranges, a settings JSON schema, HTTP actions, prompts). Every plugin becomes an
`elizaos_plugin` thing in the platform org (its actions `plugin_action` things) and a knowledge item, so any org
can list, read and search the registry by meaning.

An org installs a plugin (its dependencies first, transitively, each range checked), configures it (settings
checked against the plugin's schema; the schema's `writeOnly` properties are secrets, sealed at rest and never
returned or logged: replies name them in `secrets_set`), activates, deactivates, updates and uninstalls it. An
active plugin's actions are HTTP tools its agents may call; ten failures in a row suspend the install.
Plugins that need the elizaOS TypeScript runtime are listed but cannot be installed (the error says why).
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints, model_validator

from shared.contracts.agents.errors import AgentsError
from shared.contracts.agents.messages import _message
from shared.kernel.envelope import Payload
from shared.kernel.errors import Conflict, InvalidRequest, NotFound

PluginName = Annotated[str, StringConstraints(pattern=r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$",
                                              max_length=214)]
"""An npm package name, as the elizaOS registry keys its plugins (`@elizaos/plugin-weather`)."""
ActionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")]
Specifier = Annotated[str, StringConstraints(min_length=1, max_length=100)]
PLUGIN_TOOL_PREFIX = "plugin__"
"""An active plugin's action is offered to agents as the tool `plugin__<short name>__<action>`."""
INSTALL_RATE_OPERATION = "plugin_install"
EXECUTION_RATE_OPERATION = "plugin_execution"
"""The operations `tenancy.rate_limit.hit` counts for plugins (seed 004: 10 installs per hour, 100 executions per
minute per org, unless the org set its own `operation` rule for them)."""
SUSPEND_AFTER_FAILURES = 10


class PluginNotFound(AgentsError, NotFound):
    code = "plugin_not_found"


class PluginRegistryInvalid(AgentsError, InvalidRequest):
    """The registry document (or one entry of it: `details.entry`, `details.field`) is not one we can import."""

    code = "plugin_registry_invalid"


class PluginNotInstallable(AgentsError, InvalidRequest):
    """The plugin needs code the platform does not run (the elizaOS TypeScript runtime)."""

    code = "plugin_not_installable"


class PluginDependencyCycle(AgentsError, Conflict):
    """The plugin's dependencies lead back to it: `details.path` is the cycle (`a -> b -> a`)."""

    code = "plugin_dependency_cycle"


class PluginVersionConflict(AgentsError, Conflict):
    """A dependency's range does not admit the version available (or installed): `details.path` says whose."""

    code = "plugin_version_conflict"


class PluginAlreadyInstalled(AgentsError, Conflict):
    code = "plugin_already_installed"


class PluginNotInstalled(AgentsError, NotFound):
    code = "plugin_not_installed"


class PluginStateConflict(AgentsError, Conflict):
    """The install is not in a state that allows this (not active, suspended, needed by another plugin, ...)."""

    code = "plugin_state_conflict"


class PluginSettingsInvalid(AgentsError, InvalidRequest):
    code = "plugin_settings_invalid"


class PluginActionFailed(AgentsError, Conflict):
    """The action's server failed (`details.failures` in a row; at 10 the install is suspended)."""

    code = "plugin_action_failed"


class PluginAction(BaseModel):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class Plugin(BaseModel):
    """A registry entry as every org may read it."""

    id: UUID = Field(description="The `elizaos_plugin` thing's id (in the platform org).")
    name: str
    version: str
    description: str
    repository: str
    runtime: Literal["http", "typescript"]
    installable: bool
    reason: str | None = Field(None, description="Why it cannot be installed, when it cannot.")
    dependencies: dict[str, str] = Field(default_factory=dict, description="name -> version range")
    settings_schema: dict[str, Any] = Field(default_factory=dict)
    secret_settings: list[str] = Field(default_factory=list)
    actions: list[PluginAction] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list, description="Names of the prompts it gives an org.")
    tags: list[str] = Field(default_factory=list)
    thing_types: list[str] = Field(default_factory=list, description="Thing types whose property schema it sets.")
    mcp_servers: list[str] = Field(default_factory=list, description="Names of the MCP servers whose tools it gives.")
    imported_at: datetime


class PluginPage(BaseModel):
    plugins: list[Plugin]
    next_cursor: str | None = None


class PluginImport(Payload):
    """Exactly one source: the shipped sample, a URL to fetch, or the document itself (the CLI reads a file)."""

    sample: bool = False
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    registry: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "PluginImport":
        if sum([self.sample, self.url is not None, self.registry is not None]) != 1:
            raise ValueError("give exactly one of sample, url, registry")
        return self


class PluginImported(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class PluginRef(Payload):
    name: PluginName


class PluginQuery(Payload):
    text: Annotated[str, StringConstraints(max_length=200)] | None = Field(None, description="In the name.")
    installable: bool | None = None
    cursor: str | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class PluginSearch(Payload):
    query: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    k: Annotated[int, Field(ge=1, le=50)] = 5


class PluginHit(BaseModel):
    plugin: Plugin
    score: float


class PluginHits(BaseModel):
    hits: list[PluginHit]


class PluginInstance(BaseModel):
    """An org's install of a plugin: never a secret's value, only which secrets are set."""

    id: UUID = Field(description="The `plugin_instance` thing's id (in the org).")
    plugin: str
    version: str
    status: Literal["installed", "active", "inactive", "suspended"]
    settings: dict[str, Any]
    secrets_set: list[str]
    dependencies: list[str]
    dependency_of: list[str] = Field(default_factory=list, description="Installed plugins that need this one.")
    explicit: bool = Field(description="False when it came in only as another plugin's dependency.")
    executions: int
    consecutive_failures: int
    suspended_reason: str | None = None
    prompt_ids: list[UUID] = Field(default_factory=list, description="The org prompts it gave.")
    created_at: datetime
    updated_at: datetime


class PluginInstancePage(BaseModel):
    installs: list[PluginInstance]


class PluginInstall(Payload):
    name: PluginName
    version: Specifier | None = Field(None, description="A range the registry's version must satisfy.")


class PluginInstallResult(BaseModel):
    install: PluginInstance
    dependencies_installed: list[PluginInstance] = Field(
        default_factory=list, description="The dependencies this install brought in, deepest first.")


class PluginConfigure(Payload):
    name: PluginName
    settings: dict[str, Any] = Field(default_factory=dict, description="Merged into the current ones; null removes.")


class PluginUpdate(Payload):
    name: PluginName


class PluginExecute(Payload):
    name: PluginName
    action: ActionName
    arguments: dict[str, Any] = Field(default_factory=dict)


class PluginActionResult(BaseModel):
    plugin: str
    action: str
    result: Any


class PluginUninstalled(BaseModel):
    plugin: str
    id: UUID
    type_schemas: list[dict[str, Any]] = Field(default_factory=list, description=(
        "Each thing-type schema it had set: the graph's removal (`removed`, or `kept` with the reason while live "
        "things of the type exist)."))


PLUGIN_IMPORT = _message("agents.plugin.import", PluginImport, PluginImported)
PLUGIN_LIST = _message("agents.plugin.list", PluginQuery, PluginPage)
PLUGIN_GET = _message("agents.plugin.get", PluginRef, Plugin)
PLUGIN_SEARCH = _message("agents.plugin.search", PluginSearch, PluginHits)
PLUGIN_INSTALL = _message("agents.plugin.install", PluginInstall, PluginInstallResult)
PLUGIN_INSTALLED = _message("agents.plugin.installed", PluginQuery, PluginInstancePage)
PLUGIN_INSTANCE = _message("agents.plugin.instance", PluginRef, PluginInstance)
PLUGIN_CONFIGURE = _message("agents.plugin.configure", PluginConfigure, PluginInstance)
PLUGIN_ACTIVATE = _message("agents.plugin.activate", PluginRef, PluginInstance)
PLUGIN_DEACTIVATE = _message("agents.plugin.deactivate", PluginRef, PluginInstance)
PLUGIN_UPDATE = _message("agents.plugin.update", PluginUpdate, PluginInstance)
PLUGIN_UNINSTALL = _message("agents.plugin.uninstall", PluginRef, PluginUninstalled)
PLUGIN_EXECUTE = _message("agents.plugin.execute", PluginExecute, PluginActionResult)
