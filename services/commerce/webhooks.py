"""Webhooks to the org's agent platform: its endpoint, the order events queued for it, their history.

Checkout calls `queue_order_event(ctx, "order_create" | "order_update", order)` inside its own
transaction, so an order and the promise to announce it commit together (or not at all); the
delivery loop (`webhook_delivery.py`) sends it afterwards, signed and retried. The endpoint's secret
is sealed at rest (envelope encryption, `keys.py`, bound to the org): it is shown once, when generated.
"""

import json
import secrets
from typing import Any
from uuid import UUID

from services.commerce import keys, repository_webhooks as repo
from shared.contracts.commerce.webhooks import (
    DeliveriesQuery,
    OrderEventType,
    WebhookAttempt,
    WebhookDeliveries,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookQuery,
    WebhookSet,
)
from shared.kernel.envelope import Protocol
from shared.kernel.errors import NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology.types import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime


async def seal_secret(runtime: ServiceRuntime, secret: str, org_id: UUID) -> bytes:
    return await keys.seal(runtime, keys.WEBHOOK_SECRET, org_id, secret.encode())


async def open_secret(runtime: ServiceRuntime, sealed: bytes, org_id: UUID) -> str:
    return (await keys.open_sealed(runtime, keys.WEBHOOK_SECRET, org_id, sealed)).decode()


def _endpoint(row: repo.EndpointRow, secret: str, *, shown: bool) -> WebhookEndpoint:
    return WebhookEndpoint(url=row.url, secret=secret if shown else None, secret_hint=secret[-4:],
                           created_at=row.created_at, updated_at=row.updated_at)


async def set_endpoint(ctx: WorkContext, payload: WebhookSet) -> WebhookEndpoint:
    auth = ctx.auth
    require(auth, "acp", "webhook")
    assert ctx.session is not None
    generated = payload.secret is None
    secret = payload.secret or f"whsec_{secrets.token_urlsafe(32)}"
    row = await repo.upsert_endpoint(ctx.session, auth.org_id, payload.url,
                                     await seal_secret(ctx.runtime, secret, auth.org_id), auth.actor_id)
    await ctx.emit(EventType.SETTINGS_UPDATED, protocol=Protocol.ACP, metadata={
        "protocol": "acp", "setting": "acp_webhook_endpoint", "url": row.url, "secretRotated": True})
    return _endpoint(row, secret, shown=generated)


async def get_endpoint(ctx: WorkContext, payload: WebhookQuery) -> WebhookEndpoint:
    require(ctx.auth, "acp", "read")
    assert ctx.session is not None
    row = await repo.get_endpoint(ctx.session, ctx.auth.org_id)
    if row is None:
        raise NotFound("no webhook endpoint is set for this organization")
    return _endpoint(row, await open_secret(ctx.runtime, row.secret_sealed, row.org_id), shown=False)


async def queue_order_event(ctx: WorkContext, event_type: OrderEventType, order: dict[str, Any]) -> str | None:
    """Queue `{"type": event_type, "data": order}` (an ACP `Order`) for the org's endpoint, in `ctx`'s transaction.

    Returns the delivery's id, or None when the org has no endpoint (nothing to announce to).
    """
    assert ctx.session is not None
    delivery_id = uuid7()
    body = json.dumps({"type": event_type, "data": order}, separators=(",", ":"), ensure_ascii=False)
    queued = await repo.queue_delivery(ctx.session, id=delivery_id, org_id=ctx.auth.org_id, event_type=event_type,
                                       order_id=order.get("id"), checkout_session_id=order.get("checkout_session_id"),
                                       body=body, max_attempts=ctx.runtime.settings.commerce_webhook_max_attempts)
    return str(delivery_id) if queued else None


async def list_deliveries(ctx: WorkContext, payload: DeliveriesQuery) -> WebhookDeliveries:
    require(ctx.auth, "acp", "read")
    assert ctx.session is not None
    found = await repo.deliveries(ctx.session, ctx.auth.org_id, state=payload.state, order_id=payload.order_id,
                                  limit=payload.limit)
    return WebhookDeliveries(items=[WebhookDelivery(
        id=str(row.id), event_type=row.event_type, order_id=row.order_id, checkout_session_id=row.checkout_session_id,
        url=row.url, state=row.state,  # type: ignore[arg-type]
        attempts=[WebhookAttempt(attempt=a.attempt, started_at=a.started_at, duration_ms=a.duration_ms,
                                 status=a.status, error=a.error) for a in attempts],
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None, created_at=row.created_at,
        delivered_at=row.delivered_at) for row, attempts in found])
