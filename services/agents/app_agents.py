"""Subscribers for agents and prompts: payload -> service call -> result."""

from services.agents import service_agents, service_prompts
from shared.contracts.agents import (
    AGENT_ARCHIVE,
    AGENT_CONFIGURE,
    AGENT_CREATE,
    AGENT_DEPLOY,
    AGENT_GET,
    AGENT_LIST,
    AGENT_UPDATE,
    AGENT_VERSIONS,
    PROMPT_ARCHIVE,
    PROMPT_ATTACH,
    PROMPT_CREATE,
    PROMPT_DETACH,
    PROMPT_GET,
    PROMPT_LIST,
    PROMPT_RENDER,
    PROMPT_UPDATE,
    Agent,
    AgentConfigs,
    AgentConfigure,
    AgentCreate,
    AgentPage,
    AgentQuery,
    AgentRef,
    AgentUpdate,
    ConfigVersionsQuery,
    Prompt,
    PromptAttach,
    PromptCreate,
    PromptPage,
    PromptQuery,
    PromptRender,
    PromptTarget,
    PromptUpdate,
    RenderedPrompt,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

agents_router = ServiceRouter("agents")


@agents_router.handler(AGENT_CREATE, transactional=False)
async def create_agent(ctx: WorkContext, payload: AgentCreate) -> Agent:
    return await service_agents.create_agent(ctx, payload)


@agents_router.handler(AGENT_GET)
async def get_agent(ctx: WorkContext, payload: AgentRef) -> Agent:
    return await service_agents.get_agent(ctx, payload)


@agents_router.handler(AGENT_LIST)
async def list_agents(ctx: WorkContext, payload: AgentQuery) -> AgentPage:
    return await service_agents.list_agents(ctx, payload)


@agents_router.handler(AGENT_UPDATE)
async def update_agent(ctx: WorkContext, payload: AgentUpdate) -> Agent:
    return await service_agents.update_agent(ctx, payload)


@agents_router.handler(AGENT_CONFIGURE)
async def configure_agent(ctx: WorkContext, payload: AgentConfigure) -> Agent:
    return await service_agents.configure_agent(ctx, payload)


@agents_router.handler(AGENT_DEPLOY, transactional=False)
async def deploy_agent(ctx: WorkContext, payload: AgentRef) -> Agent:
    return await service_agents.deploy_agent(ctx, payload)


@agents_router.handler(AGENT_ARCHIVE, transactional=False)
async def archive_agent(ctx: WorkContext, payload: AgentRef) -> Agent:
    return await service_agents.archive_agent(ctx, payload)


@agents_router.handler(AGENT_VERSIONS)
async def config_versions(ctx: WorkContext, payload: ConfigVersionsQuery) -> AgentConfigs:
    return await service_agents.config_versions(ctx, payload)


@agents_router.handler(PROMPT_CREATE)
async def create_prompt(ctx: WorkContext, payload: PromptCreate) -> Prompt:
    return await service_prompts.create_prompt(ctx, payload)


@agents_router.handler(PROMPT_GET)
async def get_prompt(ctx: WorkContext, payload: PromptTarget) -> Prompt:
    return await service_prompts.get_prompt(ctx, payload.id)


@agents_router.handler(PROMPT_LIST)
async def list_prompts(ctx: WorkContext, payload: PromptQuery) -> PromptPage:
    return await service_prompts.list_prompts(ctx, payload)


@agents_router.handler(PROMPT_UPDATE)
async def update_prompt(ctx: WorkContext, payload: PromptUpdate) -> Prompt:
    return await service_prompts.update_prompt(ctx, payload)


@agents_router.handler(PROMPT_ARCHIVE)
async def archive_prompt(ctx: WorkContext, payload: PromptTarget) -> Prompt:
    return await service_prompts.archive_prompt(ctx, payload.id)


@agents_router.handler(PROMPT_RENDER)
async def render_prompt(ctx: WorkContext, payload: PromptRender) -> RenderedPrompt:
    return await service_prompts.render_prompt(ctx, payload)


@agents_router.handler(PROMPT_ATTACH)
async def attach_prompt(ctx: WorkContext, payload: PromptAttach) -> Agent:
    return await service_prompts.attach_prompt(ctx, payload, attach=True)


@agents_router.handler(PROMPT_DETACH)
async def detach_prompt(ctx: WorkContext, payload: PromptAttach) -> Agent:
    return await service_prompts.attach_prompt(ctx, payload, attach=False)
