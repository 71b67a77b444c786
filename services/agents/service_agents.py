"""Agents: a thing in the graph (same id) with versioned configs here; `deploy` promotes development to production.

An agent is created in two steps so no transaction waits on the bus: its thing is created through the
graph (idempotently, keyed by the slug, so a retry finds the same thing), then the agent row and its first
development config are written. Each change of the development config is a new version; a deploy copies
the current development config into the next production version and mirrors it on the thing.
"""

from typing import Any

from services.agents import keys, repository as repo
from services.agents.providers import split_model
from services.agents.rows import AgentRow, ConfigRow
from shared.contracts.agents import (
    BUILTIN_TOOLS,
    EXTERNAL_TOOL_PREFIX,
    Agent,
    AgentArchived,
    AgentConfig,
    AgentConfigInput,
    AgentConfigs,
    AgentConfigure,
    AgentCreate,
    AgentNotFound,
    AgentPage,
    AgentQuery,
    AgentRef,
    AgentUpdate,
    ConfigVersionConflict,
    ConfigVersionsQuery,
    InvalidAgentConfig,
    SlugTaken,
)
from shared.contracts.agents.plugins import PLUGIN_TOOL_PREFIX
from shared.contracts.graph import THING_ARCHIVE, THING_CREATE, THING_UPDATE
from shared.kernel.ontology import THING_CATEGORIES, EventType, ThingType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

AGENT_TYPES = frozenset({ThingType.AI_CLONE.value, *(t.value for t in THING_CATEGORIES["business_agents"])})
DEV, PROD = "development", "production"


def check_config(ctx: WorkContext, config: AgentConfigInput) -> None:
    """Refuse a config that names a tool nobody serves or a model no provider has."""
    split_model(config.model or ctx.runtime.settings.agents_default_model, ctx.runtime.settings.agents_default_provider)
    custom = {tool.name for tool in config.http_tools}
    clashes = custom & set(BUILTIN_TOOLS)
    if clashes:
        raise InvalidAgentConfig("an HTTP tool may not take a built-in tool's name", {"tools": sorted(clashes)})
    servers = {server.name for server in config.mcp_servers}
    reserved = sorted({t for t in custom if t.startswith((EXTERNAL_TOOL_PREFIX, PLUGIN_TOOL_PREFIX))}
                      | ({"a2a", "plugin"} & servers))
    if reserved:  # `a2a__<slug>` is an external agent's tool (tools_external.py), `plugin__...` a plugin's
        raise InvalidAgentConfig("`a2a__` and `plugin__` name external agents' and plugins' tools: no HTTP tool or "
                                 "MCP server may take them", {"names": reserved})
    unknown = [t for t in config.tools if t not in BUILTIN_TOOLS and t not in custom and t.partition("__")[0] not in servers
               and not t.startswith(PLUGIN_TOOL_PREFIX)]  # a plugin's tool is offered while the org has it active
    if unknown:
        raise InvalidAgentConfig("the config names tools no built-in, HTTP tool or MCP server serves",
                                 {"unknown": unknown, "builtin": list(BUILTIN_TOOLS)})


def stored_config(ctx: WorkContext, config: AgentConfigInput, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config to store: the model made explicit, HTTP tools' secrets kept (an update without one keeps the old,
    sealed or not); `keys.seal_config` seals what is given in clear."""
    data = config.model_dump(mode="json")
    data["model"] = config.model or ctx.runtime.settings.agents_default_model
    old_tools = {tool["name"]: tool for tool in (previous or {}).get("http_tools", [])}
    for tool, given in zip(data["http_tools"], config.http_tools, strict=True):
        kept = {} if given.secret else old_tools.get(given.name, {})
        tool["secret"] = given.secret.get_secret_value() if given.secret else kept.get("secret")
        if kept.get("secret_sealed"):
            tool["secret_sealed"] = kept["secret_sealed"]
    return data


def to_config(row: ConfigRow) -> AgentConfig:
    data = dict(row.config)
    data["http_tools"] = [{**t, "has_secret": bool(t.get("secret") or t.get("secret_sealed"))}
                          for t in data.get("http_tools", [])]
    data["mcp_servers"] = [{**s, "has_headers": bool(s.get("headers") or s.get("headers_sealed"))}
                           for s in data.get("mcp_servers", [])]
    return AgentConfig.model_validate({**data, "id": row.id, "agent_id": row.agent_id, "environment": row.environment,
                                       "version": row.version, "created_at": row.created_at, "created_by": row.created_by})


async def to_agents(ctx: WorkContext, rows: list[AgentRow]) -> list[Agent]:
    configs = await repo.current_configs(ctx.session, ctx.auth.org_id, [row.id for row in rows])
    agents = []
    for row in rows:
        production = configs.get((row.id, PROD))
        agents.append(Agent(
            id=row.id, slug=row.slug, name=row.name, type=row.type, description=row.description, status=row.status,
            development=to_config(configs[(row.id, DEV)]), production=to_config(production) if production else None,
            prompts=row.prompts, created_at=row.created_at, updated_at=row.updated_at, archived_at=row.archived_at,
        ))
    return agents


async def load_agent(ctx: WorkContext, ref: AgentRef, *, for_update: bool = False) -> AgentRow:
    row = await repo.get_agent(ctx.session, ctx.auth.org_id, slug=ref.slug, agent_id=ref.id, for_update=for_update)
    if row is None:
        raise AgentNotFound(f"no agent {ref.slug or ref.id} in this organization")
    return row


def _thing_properties(row_type: str, config: dict[str, Any]) -> dict[str, Any]:
    properties = {"systemPrompt": config["system_prompt"] or "-", "temperature": config["temperature"]}
    if row_type != ThingType.AI_CLONE.value:
        properties |= {"model": config["model"], "tools": config["tools"], "agentType": row_type.removesuffix("_agent")}
    return properties


async def create_agent(ctx: WorkContext, payload: AgentCreate) -> Agent:
    require(ctx.auth, "agents", "create")
    if payload.type not in AGENT_TYPES:
        raise InvalidAgentConfig(f"{payload.type!r} is not an agent type", {"types": sorted(AGENT_TYPES)})
    check_config(ctx, payload.config)
    config = stored_config(ctx, payload.config)
    async with ctx.transaction() as tx:
        if await repo.get_agent(tx.session, ctx.auth.org_id, slug=payload.slug):
            raise SlugTaken(f"the slug {payload.slug!r} is taken in this organization")
    thing = await ctx.call(THING_CREATE, {
        "type": payload.type, "name": payload.name, "status": "active", "idempotency_key": f"agents.agent:{payload.slug}",
        "properties": _thing_properties(payload.type, config),
    })
    async with ctx.transaction() as tx:
        row = await repo.insert_agent(tx.session, {
            "id": thing.id, "org_id": ctx.auth.org_id, "slug": payload.slug, "name": payload.name,
            "type": payload.type, "description": payload.description, "created_by": ctx.auth.actor_id,
        })
        if row is None:
            raise SlugTaken(f"the slug {payload.slug!r} is taken in this organization")
        config = await keys.seal_config(ctx.runtime, ctx.auth.org_id, row.id, config)
        await repo.insert_config(tx.session, ctx.auth.org_id, row.id, DEV, 1, config, ctx.auth.actor_id)
        return (await to_agents(tx, [row]))[0]


async def get_agent(ctx: WorkContext, ref: AgentRef) -> Agent:
    require(ctx.auth, "agents", "read")
    return (await to_agents(ctx, [await load_agent(ctx, ref)]))[0]


async def list_agents(ctx: WorkContext, query: AgentQuery) -> AgentPage:
    require(ctx.auth, "agents", "list")
    rows = await repo.list_agents(ctx.session, ctx.auth.org_id, include_archived=query.include_archived,
                                  cursor=query.cursor, limit=query.limit)
    return AgentPage(agents=await to_agents(ctx, rows), next_cursor=rows[-1].id if len(rows) == query.limit else None)


async def update_agent(ctx: WorkContext, payload: AgentUpdate) -> Agent:
    require(ctx.auth, "agents", "update")
    row = await load_agent(ctx, payload, for_update=True)
    values = {k: v for k, v in (("name", payload.name), ("description", payload.description)) if v is not None}
    if values:
        row = await repo.update_agent(ctx.session, ctx.auth.org_id, row.id, values)
        await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=row.type,
                       metadata={"entityType": row.type, "change": "agent", "fields": sorted(values)})
    return (await to_agents(ctx, [row]))[0]


async def configure_agent(ctx: WorkContext, payload: AgentConfigure) -> Agent:
    """A new development version; the production config changes only with a deploy."""
    require(ctx.auth, "agents", "update")
    row = await load_agent(ctx, payload, for_update=True)
    if row.status == "archived":
        raise AgentArchived(f"agent {row.slug} is archived")
    check_config(ctx, payload.config)
    current = (await repo.current_configs(ctx.session, ctx.auth.org_id, [row.id]))[(row.id, DEV)]
    if payload.expected_version is not None and payload.expected_version != current.version:
        raise ConfigVersionConflict(f"the development config is at version {current.version}",
                                    {"version": current.version, "expected_version": payload.expected_version})
    config = await keys.seal_config(ctx.runtime, ctx.auth.org_id, row.id, stored_config(ctx, payload.config,
                                                                                         current.config))
    added = await repo.insert_config(ctx.session, ctx.auth.org_id, row.id, DEV, current.version + 1, config,
                                     ctx.auth.actor_id)
    if added is None:
        raise ConfigVersionConflict("the development config changed meanwhile", {"version": current.version + 1})
    row = await repo.update_agent(ctx.session, ctx.auth.org_id, row.id, {})
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=row.type,
                   metadata={"entityType": row.type, "change": "config", "environment": DEV, "version": added.version})
    return (await to_agents(ctx, [row]))[0]


async def deploy_agent(ctx: WorkContext, ref: AgentRef) -> Agent:
    """Copy the current development config into the next production version, then mirror it on the thing."""
    require(ctx.auth, "agents", "update")
    async with ctx.transaction() as tx:
        row = await load_agent(tx, ref, for_update=True)
        if row.status == "archived":
            raise AgentArchived(f"agent {row.slug} is archived")
        configs = await repo.current_configs(tx.session, ctx.auth.org_id, [row.id])
        development, production = configs[(row.id, DEV)], configs.get((row.id, PROD))
        version = production.version + 1 if production else 1
        await repo.insert_config(tx.session, ctx.auth.org_id, row.id, PROD, version, development.config,
                                 ctx.auth.actor_id)
        row = await repo.update_agent(tx.session, ctx.auth.org_id, row.id, {})
        await tx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=row.type, metadata={
            "entityType": row.type, "change": "deploy", "environment": PROD, "version": version,
            "fromDevelopmentVersion": development.version,
        })
        agent = (await to_agents(tx, [row]))[0]
    await ctx.call(THING_UPDATE, {"id": str(row.id), "properties": _thing_properties(row.type, development.config)})
    return agent


async def archive_agent(ctx: WorkContext, ref: AgentRef) -> Agent:
    require(ctx.auth, "agents", "archive")
    async with ctx.transaction() as tx:
        row = await load_agent(tx, ref, for_update=True)
        already = row.status == "archived"
        if not already:
            row = await repo.update_agent(tx.session, ctx.auth.org_id, row.id, {"status": "archived",
                                                                               "archived_at": repo.NOW})
        agent = (await to_agents(tx, [row]))[0]
    if not already:
        await ctx.call(THING_ARCHIVE, {"id": str(row.id)})  # the graph emits entity_archived
    return agent


async def config_versions(ctx: WorkContext, query: ConfigVersionsQuery) -> AgentConfigs:
    require(ctx.auth, "agents", "read")
    row = await load_agent(ctx, query)
    rows = await repo.config_versions(ctx.session, ctx.auth.org_id, row.id, query.environment)
    return AgentConfigs(configs=[to_config(r) for r in rows])


