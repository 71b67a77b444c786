"""Receiving a signed webhook: find its source, count it, verify it, then act on it exactly once.

Three steps, so that what must be counted is counted and nothing is held meanwhile:
1. a short transaction finds the source (by id alone: the webhook names no org) and counts the delivery in
   the source's rate window; it commits even if the signature then fails, so bad signatures are limited too;
2. the signature is verified (no transaction held);
3. one transaction, in the source's org and acting as the source, claims the (source, webhook id) receipt and
   does what the mapping says: the receipt, the invite and the event commit together or not at all, and a
   second delivery of the same id (concurrent, or a replay within the tolerance) finds the receipt and
   answers `duplicate` without acting.
Events carry `metadata.protocol = "webhook"`, the source and the webhook id; the actor is the source.
"""

import json
import time
from typing import Any

from pydantic import TypeAdapter, ValidationError

from services.tenancy import repository as repo, repository_access as access_repo, repository_webhooks as webhooks_repo
from services.tenancy.service import require_writable
from services.tenancy.service_members import issue_invite
from services.tenancy.service_webhooks import TARGET_TYPE, open_secret
from services.tenancy.state import TenancyState
from services.tenancy.webhook_verify import HmacScheme, verify_hmac, verify_standard
from shared.contracts.tenancy.messages import Email, InviteCreate
from shared.contracts.tenancy.webhooks import (
    WebhookAccepted,
    WebhookMapping,
    WebhookMappingFailed,
    WebhookReceive,
    WebhookSignatureInvalid,
    WebhookSourceNotFound,
)
from shared.kernel.envelope import Envelope
from shared.kernel.errors import RateLimited
from shared.kernel.ontology import EventType, canonical_event
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

PROTOCOL = "webhook"
UNMAPPED = EventType.COMMUNICATION_EVENT
"""What an unmapped provider type is recorded as: a message from an external service, `mapped: false`."""
MAX_DATA_CHARS = 16_384
"""The provider's `data` rides along in the event's metadata up to this size (JSON); above, it is left out."""
MAX_DEPTH = 32
"""Nesting a body may have to be read (a provider's is a few levels deep); deeper, it is acknowledged unmapped."""
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


async def _secrets(runtime: ServiceRuntime, source: Any) -> list[str]:
    """The secrets the source accepts now: its current one, and the previous one during a rotation's grace."""
    sealed = [source.secret_sealed]
    if source.previous_secret_sealed is not None and source.previous_valid_until and source.previous_valid_until.timestamp() > time.time():
        sealed.append(source.previous_secret_sealed)
    try:
        return [await open_secret(runtime, source.org_id, source.id, blob) for blob in sealed]
    except ValueError:  # its data key is gone or the blob was altered: nothing can verify until it is rotated
        raise WebhookSignatureInvalid("this source's secret cannot be read: rotate it") from None


async def verify(runtime: ServiceRuntime, source: Any, body: bytes, headers: dict[str, str]) -> str:
    """The verified webhook id, or the typed refusal (missing, invalid, out of tolerance)."""
    secrets, now, tolerance = await _secrets(runtime, source), time.time(), source.tolerance_seconds
    if source.scheme == "standard":
        return verify_standard(secrets, body, headers, tolerance, now)
    scheme = HmacScheme(source.signature_header, source.signature_encoding, source.signature_prefix,
                        source.timestamp_header, source.id_header)
    return verify_hmac(secrets, scheme, body, headers, tolerance, now)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON Postgres stores")


def too_deep(body: str) -> bool:
    """Whether the body's arrays and objects nest deeper than `MAX_DEPTH`, found before parsing, in one pass:
    the C decoder recurses once a level, and a body of 100 000 `[` can overflow the stack before the
    interpreter's recursion limit stops it."""
    depth, in_string, escaped = 0, False, False
    for char in body:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def parse_body(body: str) -> Any:
    """The body as JSON, or None when it is not JSON or not JSON an event can carry (NUL, NaN, nested too deep)."""
    if "\x00" in body or "\\u0000" in body or too_deep(body):
        return None
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


def at_path(document: Any, path: str) -> Any:
    """The value at a dotted path (`data.email_addresses[0].email_address`), or None."""
    value = document
    for part in path.split("."):
        name, *indices = part.replace("]", "").split("[")
        value = value.get(name) if isinstance(value, dict) else None
        for index in indices:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
    return value


def provider_type(source: Any, document: Any, headers: dict[str, str]) -> str | None:
    found = headers.get(source.type_header) if source.type_header else at_path(document, source.type_path)
    return found if isinstance(found, str) and 0 < len(found) <= 100 else None


def _data(document: Any) -> dict[str, Any]:
    data = document.get("data", document) if isinstance(document, dict) else document
    if data is None:
        return {}
    if len(json.dumps(data)) > MAX_DATA_CHARS:
        return {"dataOmitted": True}
    return {"data": data}


async def receive(ctx: WorkContext, replica: TenancyState, payload: WebhookReceive, invite_ttl: float) -> WebhookAccepted:
    async with ctx.transaction() as tx:
        source = await webhooks_repo.find_source(tx.session, payload.source_id)
        if source is None:
            raise WebhookSourceNotFound("no such webhook source")
        await repo.switch_org(tx.session, source.org_id)
        calls, left = await access_repo.hit_window(tx.session, source.org_id, f"webhook:{source.id}",
                                                   source.max_per_minute, 60)
    if calls is None:
        raise RateLimited(f"this webhook source takes {source.max_per_minute} webhooks a minute; retry in {left:.1f}s",
                          {"retry_after": round(left, 3), "scope": "webhook_source", "limit": source.max_per_minute})
    headers = {name.lower(): value for name, value in payload.headers.items()}
    webhook_id = await verify(ctx.runtime, source, payload.body.encode(), headers)
    document = parse_body(payload.body)
    kind = provider_type(source, document, headers)
    mapping = WebhookMapping.model_validate(source.mappings[kind]) if kind in source.mappings else None
    as_source = Envelope(type=ctx.envelope.type, org_id=source.org_id, actor_id=source.id, role="webhook_source",
                         correlation_id=ctx.envelope.correlation_id or ctx.envelope.id, causation_id=ctx.envelope.id)
    origin = {"protocol": PROTOCOL, "actorType": "webhook", "webhookId": webhook_id, "providerType": kind,
              "source": {"id": str(source.id), "name": source.name}}
    async with WorkContext(as_source, None, ctx.runtime).transaction() as tx:
        event_type = _planned_event(mapping)
        if not await webhooks_repo.claim_receipt(tx.session, {
            "source_id": source.id, "webhook_id": webhook_id, "org_id": source.org_id, "provider_type": kind,
            "outcome": "unmapped" if mapping is None else "mapped", "event_type": event_type,
        }):
            first = await webhooks_repo.get_receipt(tx.session, source.org_id, source.id, webhook_id)
            if first is None:  # the source was deleted meanwhile, and its receipts with it
                raise WebhookSourceNotFound("no such webhook source")
            return WebhookAccepted(webhook_id=webhook_id, duplicate=True, outcome=first.outcome,
                                   event_type=first.event_type, event_id=first.event_id)
        org = await repo.get_org(tx.session, source.org_id)
        require_writable(org)
        event = await _act(tx, replica, org, source, mapping, document, origin, invite_ttl)
        await webhooks_repo.set_receipt_event(tx.session, source.org_id, source.id, webhook_id, event.type, event.id)
    return WebhookAccepted(webhook_id=webhook_id, duplicate=False, outcome="unmapped" if mapping is None else "mapped",
                           event_type=event.type, event_id=event.id)


def _planned_event(mapping: WebhookMapping | None) -> str:
    if mapping is None:
        return UNMAPPED.value
    if mapping.action == "invite":
        return EventType.USER_INVITED_TO_ORG.value
    return canonical_event(mapping.event_type or "").type.value


async def _act(tx: WorkContext, replica: TenancyState, org: Any, source: Any, mapping: WebhookMapping | None,
               document: Any, origin: dict[str, Any], invite_ttl: float) -> Envelope:
    """What the mapping says, as the source: an invite, an ontology event, or the unmapped record."""
    if mapping is None:
        return await tx.emit(UNMAPPED, target_id=source.id, target_type=TARGET_TYPE,
                             metadata={**origin, "messageType": "webhook", "mapped": False, **_data(document)})
    if mapping.action == "invite":
        try:
            email = _EMAIL.validate_python(at_path(document, mapping.email_path))
        except ValidationError:
            raise WebhookMappingFailed(f"no email address at {mapping.email_path!r} in the webhook's body",
                                       {"email_path": mapping.email_path}) from None
        invite = InviteCreate(email=email, role=mapping.role)
        issued = await issue_invite(tx, replica, org, None, invite, invited_by=source.created_by,
                                    ttl_seconds=invite_ttl, metadata={**origin, "mapped": True}, by_mail=True)
        return issued.event
    canonical = canonical_event(mapping.event_type or "")
    return await tx.emit(canonical.type, target_id=source.id, target_type=TARGET_TYPE,
                         metadata={**canonical.metadata, **origin, "mapped": True, **_data(document)})
