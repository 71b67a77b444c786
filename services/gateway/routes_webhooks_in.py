"""Signed inbound webhooks: the public receiver `POST /v1/webhooks/in/{source_id}`, and the org's sources.

The sources (`/v1/webhook-sources`: create, list, read, delete, rotate the secret) are an org admin's, with
a key like any route; the secret comes back from the create and the rotate only.

The receiver is deliberately unauthenticated by API key: the third party signs instead (Standard Webhooks, or the HMAC
header its source names), and tenancy verifies the signature against the source's secret
(`tenancy.webhook.receive`). The gateway only passes the raw body (the exact bytes signed, as UTF-8
text, at most `MAX_BODY_BYTES`) and the request's headers on, less those that are credentials of ours
or the connection's own. Answers: 200 (`duplicate: true` for a webhook id received before), 401 with
`webhook_signature_missing` / `webhook_signature_invalid` / `webhook_timestamp_out_of_tolerance`, 404
for a source that does not exist (whatever org one guesses), 413, 422, 429 (the source's rate), 503.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from services.gateway.auth import Caller
from services.gateway.problems import error_responses
from services.gateway.routes_tenancy import READ, WRITE, Bus
from services.gateway.shapes import derived
from shared.contracts.tenancy.webhooks import (
    MAX_BODY_BYTES,
    WEBHOOK_RECEIVE,
    WEBHOOK_SOURCE_CREATE,
    WEBHOOK_SOURCE_DELETE,
    WEBHOOK_SOURCE_GET,
    WEBHOOK_SOURCE_LIST,
    WEBHOOK_SOURCE_ROTATE,
    WebhookAccepted,
    WebhookSource,
    WebhookSourceCreate,
    WebhookSourceDeleted,
    WebhookSourceIssued,
    WebhookSourceList,
    WebhookSourceRotate,
    WebhookSources,
)
from shared.kernel.errors import InvalidRequest, PayloadTooLarge

NOT_FORWARDED = frozenset({
    "authorization", "x-api-key", "cookie", "host", "content-length", "connection", "transfer-encoding",
    "keep-alive", "traceparent", "tracestate", "x-request-id", "accept", "accept-encoding",
})
"""Headers tenancy never needs to verify a webhook: our own credentials and the connection's."""

router = APIRouter(prefix="/v1", tags=["webhooks"])

BODY = {"requestBody": {"required": True, "description": "The provider's webhook, exactly as it signed it.",
                        "content": {"application/json": {"schema": {"type": "object"}}}}}


@router.post("/webhooks/in/{source_id}", responses=error_responses(401, 404, 413, 422, 429, 503), openapi_extra=BODY)
async def receive_webhook(source_id: UUID, request: Request, bus: Bus) -> WebhookAccepted:
    """A third party's signed webhook for one of an org's webhook sources; the signature is the credential."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"a webhook body may be at most {MAX_BODY_BYTES} bytes",
                              {"size": len(body), "limit": MAX_BODY_BYTES})
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("a webhook body must be UTF-8 text") from None
    headers = {name: value for name, value in request.headers.items() if name not in NOT_FORWARDED}
    return await bus.request(WEBHOOK_RECEIVE, {"source_id": source_id, "body": text, "headers": headers})


RotateIn = derived(WebhookSourceRotate, "WebhookSourceRotateIn", drop=("source_id",))


@router.post("/webhook-sources", status_code=201, responses=WRITE)
async def create_webhook_source(body: WebhookSourceCreate, caller: Caller, bus: Bus) -> WebhookSourceIssued:
    """The secret (given, or generated) is in this reply only: hand it to the provider."""
    return await bus.request(WEBHOOK_SOURCE_CREATE, body.model_dump(mode="json", exclude_unset=True), caller)


@router.get("/webhook-sources", responses=READ)
async def list_webhook_sources(query: Annotated[WebhookSourceList, Query()], caller: Caller, bus: Bus) -> WebhookSources:
    return await bus.request(WEBHOOK_SOURCE_LIST, query, caller)


@router.get("/webhook-sources/{source_id}", responses=READ)
async def get_webhook_source(source_id: UUID, caller: Caller, bus: Bus) -> WebhookSource:
    return await bus.request(WEBHOOK_SOURCE_GET, {"source_id": source_id}, caller)


@router.delete("/webhook-sources/{source_id}", responses=WRITE)
async def delete_webhook_source(source_id: UUID, caller: Caller, bus: Bus) -> WebhookSourceDeleted:
    return await bus.request(WEBHOOK_SOURCE_DELETE, {"source_id": source_id}, caller)


@router.post("/webhook-sources/{source_id}/rotate", responses=WRITE)
async def rotate_webhook_secret(source_id: UUID, caller: Caller, bus: Bus,  # type: ignore[valid-type]
                                body: RotateIn | None = None) -> WebhookSourceIssued:
    """A new secret (in this reply only); the previous one still verifies for `grace_seconds`."""
    given = {} if body is None else body.model_dump(mode="json", exclude_unset=True)
    return await bus.request(WEBHOOK_SOURCE_ROTATE, {**given, "source_id": source_id}, caller)
