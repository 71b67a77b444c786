"""Tenancy's subscribers for signed inbound webhooks: the sources (an org admin's) and the receiver (no key).

Joined to the service's router by `app.py` (`router.include`).
"""

from services.tenancy import service_webhook_receive, service_webhooks
from services.tenancy.state import state_of
from shared.contracts.tenancy.webhooks import (
    WEBHOOK_RECEIVE,
    WEBHOOK_SOURCE_CREATE,
    WEBHOOK_SOURCE_DELETE,
    WEBHOOK_SOURCE_GET,
    WEBHOOK_SOURCE_LIST,
    WEBHOOK_SOURCE_ROTATE,
    WebhookAccepted,
    WebhookReceive,
    WebhookSource,
    WebhookSourceCreate,
    WebhookSourceDeleted,
    WebhookSourceIssued,
    WebhookSourceList,
    WebhookSourceRef,
    WebhookSourceRotate,
    WebhookSources,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

router = ServiceRouter("tenancy")


@router.handler(WEBHOOK_SOURCE_CREATE)
async def create_webhook_source(ctx: WorkContext, payload: WebhookSourceCreate) -> WebhookSourceIssued:
    return await service_webhooks.create_source(ctx, payload)


@router.handler(WEBHOOK_SOURCE_LIST)
async def list_webhook_sources(ctx: WorkContext, payload: WebhookSourceList) -> WebhookSources:
    return WebhookSources(sources=await service_webhooks.list_sources(ctx, payload.limit))


@router.handler(WEBHOOK_SOURCE_GET)
async def get_webhook_source(ctx: WorkContext, payload: WebhookSourceRef) -> WebhookSource:
    return await service_webhooks.get_source(ctx, payload.source_id)


@router.handler(WEBHOOK_SOURCE_DELETE)
async def delete_webhook_source(ctx: WorkContext, payload: WebhookSourceRef) -> WebhookSourceDeleted:
    return await service_webhooks.delete_source(ctx, payload.source_id)


@router.handler(WEBHOOK_SOURCE_ROTATE)
async def rotate_webhook_secret(ctx: WorkContext, payload: WebhookSourceRotate) -> WebhookSourceIssued:
    return await service_webhooks.rotate_secret(ctx, payload)


@router.handler(WEBHOOK_RECEIVE, transactional=False)
async def receive_webhook(ctx: WorkContext, payload: WebhookReceive) -> WebhookAccepted:
    """Its own transactions: the rate window counts a delivery even when its signature then fails."""
    return await service_webhook_receive.receive(ctx, state_of(ctx.runtime), payload, ctx.runtime.settings.invite_ttl)
