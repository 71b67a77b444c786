"""Outbox rows for events staged in bulk (a batch create), exactly as `RequestContext.emit` builds them.

`shared.outbox.Outbox` writes one row per call, a round trip each; a 500-thing batch would
spend most of its time there. This builds the same envelope, subject and trace headers so the
relay and the event log cannot tell the difference. (Candidate for `Outbox.add_many` in shared.)
"""

import json
from typing import Any
from uuid import UUID

from opentelemetry import propagate

from shared import subjects
from shared.envelope import Envelope
from shared.events import EventPayload
from shared.handlers import RequestContext


def outbox_row(ctx: RequestContext, event_type: str, target_id: UUID, target_type: str, metadata: dict[str, Any]) -> dict[str, Any]:
    cause, org_id, protocol = ctx.envelope, ctx.auth.org_id, ctx.envelope.protocol
    envelope = Envelope(
        protocol=protocol,
        type=event_type,
        org_id=org_id,
        actor_id=cause.actor_id,
        correlation_id=cause.correlation_id or cause.id,
        causation_id=cause.id,
        payload=EventPayload(target_id=target_id, target_type=target_type, metadata=metadata).model_dump(mode="json"),
    )
    trace_headers: dict[str, str] = {}
    propagate.inject(trace_headers)
    return {
        "id": envelope.id,
        "subject": subjects.event(protocol.value, org_id, event_type),
        "envelope": envelope.to_bytes(),
        "trace_headers": json.dumps(trace_headers),
    }
