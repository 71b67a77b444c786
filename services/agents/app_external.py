"""Subscribers for external A2A agents: payload -> service call -> result."""

from services.agents import service_external
from shared.contracts.agents.external import (
    EXTERNAL_ADD,
    EXTERNAL_ARCHIVE,
    EXTERNAL_CREDENTIALS,
    EXTERNAL_GET,
    EXTERNAL_LIST,
    EXTERNAL_REFRESH,
    ExternalAgent,
    ExternalAgentAdd,
    ExternalAgentCredentials,
    ExternalAgentPage,
    ExternalAgentQuery,
    ExternalAgentRef,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

external_router = ServiceRouter("agents")


@external_router.handler(EXTERNAL_ADD, transactional=False)
async def add_external(ctx: WorkContext, payload: ExternalAgentAdd) -> ExternalAgent:
    return await service_external.add(ctx, payload)


@external_router.handler(EXTERNAL_GET)
async def get_external(ctx: WorkContext, payload: ExternalAgentRef) -> ExternalAgent:
    return await service_external.get(ctx, payload)


@external_router.handler(EXTERNAL_LIST)
async def list_external(ctx: WorkContext, payload: ExternalAgentQuery) -> ExternalAgentPage:
    return await service_external.list_page(ctx, payload)


@external_router.handler(EXTERNAL_CREDENTIALS)
async def set_credentials(ctx: WorkContext, payload: ExternalAgentCredentials) -> ExternalAgent:
    return await service_external.set_credentials(ctx, payload)


@external_router.handler(EXTERNAL_REFRESH, transactional=False)
async def refresh_external(ctx: WorkContext, payload: ExternalAgentRef) -> ExternalAgent:
    return await service_external.refresh(ctx, payload)


@external_router.handler(EXTERNAL_ARCHIVE, transactional=False)
async def archive_external(ctx: WorkContext, payload: ExternalAgentRef) -> ExternalAgent:
    return await service_external.archive(ctx, payload)
