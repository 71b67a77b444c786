"""Appended events into the `ONE_EVENTS` stream, acked by JetStream before the caller hears back.

`Nats-Msg-Id` is the event id, so a retried append is a duplicate the stream
drops; the trace headers let the ingest record the trace the event belongs to.
"""

import asyncio

from shared.contracts.eventlog import Appended
from shared.kernel import subjects
from shared.kernel.envelope import Envelope
from shared.runtime.bus import publish_to_stream
from shared.runtime.service import ServiceRuntime


async def publish_events(runtime: ServiceRuntime, events: list[Envelope]) -> list[Appended]:
    """Publish each event on its subject (protocol, org, type) and return what JetStream acked, in order."""
    js = runtime.broker.connection.jetstream()
    stream = runtime.settings.events_stream

    async def one(event: Envelope) -> Appended:
        subject = subjects.event(event.protocol.value, event.org_id, event.type)
        ack = await publish_to_stream(js, subject, event.to_bytes(), event.id, stream=stream)
        return Appended(id=event.id, type=event.type, subject=subject, stream_seq=ack.seq, duplicate=bool(ack.duplicate))

    return list(await asyncio.gather(*(one(e) for e in events)))
