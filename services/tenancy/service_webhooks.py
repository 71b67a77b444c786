"""Inbound webhook sources: an org admin registers one, rotates its secret, deletes it; lists and reads them.

A source's secret is generated (or given), returned by the create and the rotate only, and stored sealed
(envelope encryption under the org's data key, bound to the org and the source): no other reply and no
event carries it, only its last four characters. Receiving a webhook is `service_webhook_receive`.
"""

import base64
import secrets
from datetime import timedelta
from typing import Any
from uuid import UUID

from services.tenancy import repository_webhooks as webhooks_repo
from services.tenancy.service import enter_org, now, record, resolve_actor
from services.tenancy.webhook_verify import standard_key
from shared.contracts.tenancy.webhooks import (
    STANDARD_SECRET_PREFIX,
    WebhookMapping,
    WebhookSource,
    WebhookSourceCreate,
    WebhookSourceDeleted,
    WebhookSourceIssued,
    WebhookSourceNotFound,
    WebhookSourceRotate,
)
from shared.kernel.errors import InvalidRequest
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.sealing_envelope import owner
from shared.runtime.context import WorkContext
from shared.runtime.keyring import keyring_for
from shared.runtime.service import ServiceRuntime

_PURPOSE = "one.tenancy.webhook-secret"
"""The owner label of a sealed webhook secret: with the org and the source's id, the additional data it is bound to."""
TARGET_TYPE = "external_connection"
"""The ontology's thing type for a connection to an external service; a source is one with `connectionType: webhook`."""


async def seal_secret(runtime: ServiceRuntime, org_id: UUID, source_id: UUID, secret: str) -> bytes:
    """Envelope-sealed (`shared.runtime.keyring`: AES-GCM under the org's data key, wrapped by a KEK), bound to the
    org and the source: `one keys rotate` re-wraps it without touching it, and it opens for no other source."""
    return await keyring_for(runtime).seal(org_id, secret.encode(), owner(_PURPOSE, org_id, source_id))


async def open_secret(runtime: ServiceRuntime, org_id: UUID, source_id: UUID, sealed: bytes) -> str:
    """The secret; ValueError when the blob does not open (altered, moved to another source or org)."""
    return (await keyring_for(runtime).open(org_id, bytes(sealed), owner(_PURPOSE, org_id, source_id))).decode()


def new_secret(scheme: str) -> str:
    """`whsec_<base64 of 24 random bytes>` (Standard Webhooks' form) or, for `hmac`, 43 URL-safe characters."""
    if scheme == "standard":
        return STANDARD_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
    return secrets.token_urlsafe(32)


def _checked_secret(scheme: str, given: str | None) -> str:
    if given is None:
        return new_secret(scheme)
    if scheme == "standard":
        try:
            standard_key(given)
        except ValueError as error:
            raise InvalidRequest(str(error), {"field": "secret"}) from None
    return given


def source_model(row: Any) -> WebhookSource:
    mappings = {name: WebhookMapping.model_validate(m) for name, m in row.mappings.items()}
    return WebhookSource(
        id=row.id, org_id=row.org_id, name=row.name, scheme=row.scheme, secret_hint=row.secret_hint,
        signature_header=row.signature_header, signature_encoding=row.signature_encoding,
        signature_prefix=row.signature_prefix, timestamp_header=row.timestamp_header, id_header=row.id_header,
        type_path=row.type_path, type_header=row.type_header, tolerance_seconds=row.tolerance_seconds,
        max_per_minute=row.max_per_minute, mappings=mappings, receiver_path=f"/v1/webhooks/in/{row.id}",
        previous_secret_valid_until=row.previous_valid_until if row.previous_secret_sealed is not None else None,
        created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at, rotated_at=row.rotated_at,
    )


async def _admin_org(ctx: WorkContext, action: str, *, write: bool) -> Any:
    actor = await resolve_actor(ctx)
    actor.require("webhook_sources", action)
    return await enter_org(ctx, actor, None, f"webhook_source.{action}", write=write)


async def _owned_source(ctx: WorkContext, org_id: UUID, source_id: UUID, *, for_update: bool = False) -> Any:
    row = await webhooks_repo.get_source(ctx.session, org_id, source_id, for_update=for_update)
    if row is None:
        raise WebhookSourceNotFound(f"no webhook source {source_id}")
    return row


async def create_source(ctx: WorkContext, payload: WebhookSourceCreate) -> WebhookSourceIssued:
    org = await _admin_org(ctx, "create", write=True)
    secret = _checked_secret(payload.scheme, payload.secret)
    source_id = uuid7()
    hmac_only = payload.scheme == "hmac"
    await webhooks_repo.insert_source(ctx.session, {
        "id": source_id, "org_id": org.id, "name": payload.name, "scheme": payload.scheme,
        "secret_sealed": await seal_secret(ctx.runtime, org.id, source_id, secret), "secret_hint": secret[-4:],
        "signature_header": payload.signature_header if hmac_only else None,
        "signature_encoding": payload.signature_encoding if hmac_only else None,
        "signature_prefix": payload.signature_prefix if hmac_only else "",
        "timestamp_header": payload.timestamp_header if hmac_only else None,
        "id_header": payload.id_header if hmac_only else None,
        "type_path": payload.type_path, "type_header": payload.type_header,
        "tolerance_seconds": payload.tolerance_seconds, "max_per_minute": payload.max_per_minute,
        "mappings": {name: m.model_dump(mode="json") for name, m in payload.mappings.items()},
        "created_by": ctx.auth.actor_id,
    })
    source = source_model(await webhooks_repo.get_source(ctx.session, org.id, source_id))
    await record(ctx, EventType.ENTITY_CREATED, org_id=org.id, target_id=source_id, target_type=TARGET_TYPE,
                 metadata={"connectionType": "webhook", "name": source.name, "scheme": source.scheme,
                           "mappedTypes": sorted(source.mappings)})
    return WebhookSourceIssued(source=source, secret=secret)


async def list_sources(ctx: WorkContext, limit: int) -> list[WebhookSource]:
    org = await _admin_org(ctx, "list", write=False)
    return [source_model(row) for row in await webhooks_repo.list_sources(ctx.session, org.id, limit)]


async def get_source(ctx: WorkContext, source_id: UUID) -> WebhookSource:
    org = await _admin_org(ctx, "read", write=False)
    return source_model(await _owned_source(ctx, org.id, source_id))


async def delete_source(ctx: WorkContext, source_id: UUID) -> WebhookSourceDeleted:
    """Its receipts go with it; webhooks sent to it from now on are not found."""
    org = await _admin_org(ctx, "delete", write=True)
    row = await _owned_source(ctx, org.id, source_id, for_update=True)
    await webhooks_repo.delete_source(ctx.session, org.id, source_id)
    await record(ctx, EventType.ENTITY_DELETED, org_id=org.id, target_id=source_id, target_type=TARGET_TYPE,
                 metadata={"connectionType": "webhook", "name": row.name})
    return WebhookSourceDeleted(source_id=source_id)


async def rotate_secret(ctx: WorkContext, payload: WebhookSourceRotate) -> WebhookSourceIssued:
    """A new secret from now on; the current one still verifies for `grace_seconds`, while the provider switches."""
    org = await _admin_org(ctx, "rotate", write=True)
    row = await _owned_source(ctx, org.id, payload.source_id, for_update=True)
    secret = _checked_secret(row.scheme, payload.secret)
    keep = payload.grace_seconds > 0
    until = now() + timedelta(seconds=payload.grace_seconds) if keep else None
    sealed = await seal_secret(ctx.runtime, org.id, row.id, secret)
    await webhooks_repo.rotate_secret(ctx.session, org.id, row.id, sealed, secret[-4:],
                                      bytes(row.secret_sealed) if keep else None, until)
    await record(ctx, EventType.ENTITY_UPDATED, org_id=org.id, target_id=row.id, target_type=TARGET_TYPE,
                 metadata={"connectionType": "webhook", "name": row.name, "changes": {"secret": "rotated"},
                           "previousValidUntil": until.isoformat() if until else None})
    source = source_model(await webhooks_repo.get_source(ctx.session, org.id, row.id))
    return WebhookSourceIssued(source=source, secret=secret)
