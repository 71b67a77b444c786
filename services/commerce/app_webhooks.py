"""The webhook subscribers (set and read the org's endpoint, list deliveries); joined in app.py, whose hooks
start and stop this replica's delivery loop (webhook_delivery.py)."""

from services.commerce import webhooks
from shared.contracts.commerce.webhooks import (
    WEBHOOK_DELIVERIES,
    WEBHOOK_GET,
    WEBHOOK_SET,
    DeliveriesQuery,
    WebhookDeliveries,
    WebhookEndpoint,
    WebhookQuery,
    WebhookSet,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

webhooks_router = ServiceRouter("commerce")


@webhooks_router.handler(WEBHOOK_SET)
async def set_webhook(ctx: WorkContext, payload: WebhookSet) -> WebhookEndpoint:
    return await webhooks.set_endpoint(ctx, payload)


@webhooks_router.handler(WEBHOOK_GET)
async def get_webhook(ctx: WorkContext, payload: WebhookQuery) -> WebhookEndpoint:
    return await webhooks.get_endpoint(ctx, payload)


@webhooks_router.handler(WEBHOOK_DELIVERIES)
async def list_webhook_deliveries(ctx: WorkContext, payload: DeliveriesQuery) -> WebhookDeliveries:
    return await webhooks.list_deliveries(ctx, payload)
