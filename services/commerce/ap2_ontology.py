"""What an AP2 mandate leaves in the ontology (seed 003, "AP2 Protocol"), with `metadata.protocol = "ap2"`.

- events, staged in the work's own transaction: `mandate_event`s (`action`: created, presented, verified,
  rejected with its `reason`, revoked; `mandateType`: open or closed; `kind`: payment or checkout) and, when
  a mandate pays a checkout, the merchant's `payment_event` (`status: processed`, money in `currency`,
  `amountMinor` exact) so revenue by protocol counts AP2;
- things and connections, written after the commit by the graph sync loop (ap2_replica.py): a `mandate`
  thing per mandate (`properties` from `mandate_properties`: mandateType, kind, constraints, status,
  credentialHash, never the credential itself) and the `fulfilled` connection closed -> open.
"""

from typing import Any
from uuid import UUID

from services.commerce.totals import to_major
from shared.kernel.events import EventPayload
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext
from shared.runtime.outbox import OutboxMessage

PROTOCOL = "ap2"


Event = tuple[str, dict[str, Any]]


def mandate(action: str, mandate_type: str, kind: str = "payment", **extra: Any) -> Event:
    """A `mandate_event` (action: created, presented, verified, rejected, revoked, accepted)."""
    return EventType.MANDATE_EVENT, {"protocol": PROTOCOL, "action": action, "mandateType": mandate_type,
                                     "kind": kind, **extra}


def payment(amount: int, currency: str, status: str = "processed", **extra: Any) -> Event:
    """The merchant's `payment_event` (`processed`: revenue by protocol counts it; `failed`: a PSP decline)."""
    return EventType.PAYMENT_EVENT, {"protocol": PROTOCOL, "status": status, "direction": "incoming",
                                     "amount": float(to_major(amount, currency)), "amountMinor": amount,
                                     "currency": currency, **extra}


async def emit(ctx: WorkContext, *events: Event) -> None:
    """Stage the events in the work's transaction, with one statement."""
    await ctx.emit_many([(type_, EventPayload(metadata=metadata)) for type_, metadata in events])


def messages(ctx: WorkContext, *events: Event) -> list[OutboxMessage]:
    """The events' outbox messages, for a statement that stages them along with the rows they describe."""
    return ctx.event_messages([(type_, EventPayload(metadata=metadata)) for type_, metadata in events])


async def mandate_event(ctx: WorkContext, action: str, mandate_type: str, kind: str = "payment",
                        **extra: Any) -> None:
    await emit(ctx, mandate(action, mandate_type, kind, **extra))


async def payment_event(ctx: WorkContext, amount: int, currency: str, **extra: Any) -> None:
    await emit(ctx, payment(amount, currency, **extra))


def mandate_properties(mandate_id: UUID, mandate_type: str, claims: dict[str, Any], credential_hash: str,
                       status: str, kind: str = "payment", **extra: Any) -> dict[str, Any]:
    """A `mandate` thing's properties: the claims that say what it allows, never a credential."""
    kept = {key: claims[key] for key in ("vct", "constraints", "payee", "payment_amount", "transaction_id",
                                         "checkout_hash", "iat", "exp") if key in claims}
    return {"mandateType": mandate_type, "kind": kind, "protocol": PROTOCOL, "version": 2, "status": status,
            "credentialHash": credential_hash, "mandateId": str(mandate_id), **kept, **extra}


def thing_name(mandate_type: str, kind: str, version: int, mandate_id: UUID) -> str:
    """E.g. `AP2 open payment mandate 0190...`, `AP2 V1 cart mandate 0190...`."""
    return f"AP2 {'V1 ' if version == 1 else ''}{mandate_type + ' ' if version == 2 else ''}{kind} mandate {mandate_id}"
