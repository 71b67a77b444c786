"""What makes an event storable: its type, its variant, its protocol. No SQL, no NATS.

Both paths use this: `event.append` (the caller gets a typed error) and the ingest
of `ONE_EVENTS` (the event goes to dead-letter with the same reason code), so an
event gets one answer whichever way it arrives.
"""

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from services.eventlog.models import IncomingEvent
from shared.contracts.eventlog import InvalidEvent
from shared.kernel.envelope import Envelope, Protocol
from shared.kernel.events import EventPayload
from shared.kernel.ontology import (
    PROTOCOL_EVENT_TYPES,
    EventType,
    MetadataProtocol,
    UnknownOntologyType,
    canonical_event,
)

_METADATA_PROTOCOLS = frozenset(p.value for p in MetadataProtocol)


class EventEnvelope(Envelope):
    """An `Envelope` whose payload is an `EventPayload`: both checked in one pass."""

    payload: EventPayload  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class CheckedType:
    """A name resolved to the stored type, the variant keys to add, and the event's protocol."""

    type: EventType
    patch: dict[str, Any]
    metadata_protocol: str | None


def check_event_type(name: str, metadata: dict[str, Any], transport: Protocol) -> CheckedType:
    """Map granular names onto consolidated types; a protocol-specific type names its protocol.

    It names it in `metadata.protocol`, or else is published over it: an event sent
    over x402 without one is an x402 event (the log adds the key). Sent natively
    it must say which protocol it belongs to. A `metadata.protocol` other than the
    transport's is kept: what the event is about may differ from how it travelled.
    """
    try:
        canonical = canonical_event(name)
    except UnknownOntologyType:
        raise InvalidEvent("unknown_type", f"unknown event type {name!r}", {"type": name}) from None
    patch = {}
    for key, value in canonical.metadata.items():
        if key not in metadata:
            patch[key] = value
        elif metadata[key] != value:
            raise InvalidEvent(
                "variant_conflict",
                f"{name!r} means metadata.{key} = {value!r}, but the event says {metadata[key]!r}",
                {"type": name, "key": key},
            )
    protocol = metadata.get("protocol")
    if protocol is None:
        if canonical.type in PROTOCOL_EVENT_TYPES:
            protocol = patch["protocol"] = _protocol_of_transport(name, canonical.type, transport)
    elif protocol not in _METADATA_PROTOCOLS:
        raise InvalidEvent(
            "unknown_protocol",
            f"metadata.protocol {protocol!r} is not one of {', '.join(sorted(_METADATA_PROTOCOLS))}",
            {"type": name},
        )
    if canonical.type is EventType.PAYMENT_EVENT and "amount" in metadata:
        check_amount(metadata["amount"])
    return CheckedType(canonical.type, patch, protocol)


def _protocol_of_transport(name: str, event_type: EventType, transport: Protocol) -> str:
    """The protocol a protocol-specific event without `metadata.protocol` belongs to: the one it came over."""
    if transport is Protocol.NATIVE:
        raise InvalidEvent(
            "missing_protocol",
            f"{event_type.value!r} events published natively must carry metadata.protocol",
            {"type": name},
        )
    return transport.value


def check_amount(amount: Any) -> None:
    """Revenue sums `metadata.amount` as numeric: it must be a finite number (or numeric string)."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise InvalidEvent("invalid_amount", "metadata.amount must be a number")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidEvent("invalid_amount", "metadata.amount must be a number") from None
    if not value.is_finite():
        raise InvalidEvent("invalid_amount", "metadata.amount must be finite")


def trace_id_of(headers: dict[str, str] | None) -> str | None:
    """The trace id of a W3C `traceparent` header, if there is a well-formed one."""
    value = headers.get("traceparent") if headers else None
    if value and len(value) >= 55 and value[2] == "-" and value[35] == "-":
        return value[3:35]
    return None


def check_incoming(raw: bytes, subject: str, headers: dict[str, str] | None, stream_seq: int | None) -> IncomingEvent:
    """Decode and check one domain event off the bus; `InvalidEvent` says why it cannot be stored."""
    try:
        envelope = EventEnvelope.model_validate_json(raw)
    except ValidationError as error:
        if any(e["loc"] and e["loc"][0] == "payload" for e in error.errors()):
            raise InvalidEvent("invalid_payload", f"payload is not an event payload: {_first_error(error)}") from None
        raise InvalidEvent("malformed_envelope", f"not an event envelope: {_first_error(error)}") from None
    if envelope.org_id is None:
        raise InvalidEvent("missing_org", "event envelope has no org_id")
    payload = envelope.payload
    _check_subject(subject, envelope)
    checked = check_event_type(envelope.type, payload.metadata, envelope.protocol)
    return IncomingEvent(
        id=envelope.id,
        org_id=envelope.org_id,
        type=checked.type.value,
        actor_id=envelope.actor_id,
        target_id=payload.target_id,
        target_type=payload.target_type,
        protocol=checked.metadata_protocol or envelope.protocol.value,
        transport_protocol=envelope.protocol.value,
        occurred_at=envelope.occurred_at,
        raw=raw.decode(),
        patch=json.dumps(checked.patch) if checked.patch else "{}",
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        trace_id=trace_id_of(headers),
        stream_seq=stream_seq,
    )


def _check_subject(subject: str, envelope: Envelope) -> None:
    """`...<protocol>.<org_id>.<type>` must agree with the envelope: no event filed under another org."""
    parts = subject.rsplit(".", 3)
    if len(parts) != 4 or parts[1:] != [envelope.protocol.value, str(envelope.org_id), envelope.type]:
        raise InvalidEvent(
            "subject_mismatch",
            f"subject {subject!r} does not match the envelope's protocol, org and type",
            {"subject": subject},
        )


def _first_error(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"
