"""The outbox relay over real NATS (JetStream) and Postgres: every row goes out as it was staged, in the trace it
was staged under.

The relay reads the trace context once per distinct `trace_headers` of a claimed batch: these tests put rows of
several staging transactions (sampled, not sampled, sampled with a `tracestate`, outside any trace) in one batch,
and check each message's bytes, `Nats-Msg-Id` and trace headers, and each sampled row's PRODUCER span.
"""

from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.errors import APIError
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState
from sqlalchemy import text

from shared.kernel import subjects
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.bus import ensure_events_stream, publish_to_stream, store_in_stream
from shared.runtime.db import Database, app_url
from shared.runtime.outbox import Outbox, OutboxMessage, OutboxRelay, event_message
from tests.reliability.test_outbox_relay import schema, stream_messages  # noqa: F401 (schema: a fixture)

EVENT = "relay_probe"


@pytest.fixture
async def outbox(migrated: Settings, nc: NatsClient, schema: str) -> Outbox:
    """An outbox of its own, which no running service relays, and the events stream to relay it to."""
    await ensure_events_stream(nc.jetstream(), migrated)
    return Outbox(schema)


@pytest.fixture
async def db(migrated: Settings) -> AsyncIterator[Database]:
    database = Database(app_url(migrated), pool_size=2)
    yield database
    await database.dispose()


async def stage(db: Database, outbox: Outbox, org: AuthContext, n: int) -> list[OutboxMessage]:
    """`n` events staged in one transaction, under the current trace context (if any)."""
    messages = [event_message(EVENT, org.org_id, org.actor_id, {"n": i, "text": "é"}, Protocol.NATIVE, None)
                for i in range(n)]
    async with db.transaction() as session:
        await outbox.add_many(session, messages)
    return messages


async def published(nc: NatsClient, stream: str, org: AuthContext) -> dict[str, Msg]:
    """What the stream holds for this org's probe events, by `Nats-Msg-Id`."""
    held = await stream_messages(nc, stream, subjects.event("native", org.org_id, EVENT))
    return {msg.headers["Nats-Msg-Id"]: msg for msg in held}


def producer_spans(spans: InMemorySpanExporter, messages: list[OutboxMessage]) -> dict[UUID, list[ReadableSpan]]:
    ids = {str(m.id): m.id for m in messages}
    found: dict[UUID, list[ReadableSpan]] = {}
    for span in spans.get_finished_spans():
        message_id = (span.attributes or {}).get("messaging.message.id")
        if span.kind == SpanKind.PRODUCER and message_id in ids:
            found.setdefault(ids[message_id], []).append(span)
    return found


def traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def remote(sampled: bool, state: TraceState | None = None) -> NonRecordingSpan:
    """A caller's trace context, as a request from another process brings it."""
    return NonRecordingSpan(SpanContext(uuid7().int, uuid7().int >> 64, True, TraceFlags(int(sampled)), state))


async def test_each_row_of_a_batch_goes_out_in_the_trace_it_was_staged_under(
    outbox: Outbox, db: Database, nc: NatsClient, migrated: Settings, org: AuthContext, spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("tests").start_as_current_span("staging, sampled") as sampled:
        in_sampled = await stage(db, outbox, org, 3)
    with trace.use_span(unsampled := remote(sampled=False)):
        in_unsampled = await stage(db, outbox, org, 2)
    with trace.use_span(with_state := remote(sampled=True, state=TraceState([("vendor", "x")]))):
        in_state = await stage(db, outbox, org, 2)
    untraced = await stage(db, outbox, org, 1)
    everything = in_sampled + in_unsampled + in_state + untraced

    relay = OutboxRelay(outbox, db, nc.jetstream(), stream=migrated.events_stream)
    assert await relay.relay_once() == len(everything)  # one claimed batch holds the four staging transactions
    assert await relay.relay_once() == 0

    sent = await published(nc, migrated.events_stream, org)
    assert {id: msg.data for id, msg in sent.items()} == {str(m.id): m.json for m in everything}  # the staged bytes
    producers = producer_spans(spans, everything)
    assert set(producers) == {m.id for m in in_sampled + in_state + untraced}  # one span each; none when unsampled
    for message in everything:
        headers = sent[str(message.id)].headers
        if message in in_unsampled:
            assert headers["traceparent"] == traceparent(unsampled.get_span_context())  # as it was staged
            continue
        (span,) = producers[message.id]
        assert span.name == f"{message.subject} publish"
        assert span.attributes["messaging.system"] == "nats"
        assert headers["traceparent"] == traceparent(span.get_span_context())  # the consumer joins the PRODUCER span
        parent = (sampled if message in in_sampled else with_state).get_span_context()
        if message in untraced:
            assert span.parent is None
        else:
            assert (span.parent.trace_id, span.parent.span_id) == (parent.trace_id, parent.span_id)
        assert headers.get("tracestate") == ("vendor=x" if message in in_state else None)


async def test_a_row_that_fails_to_publish_goes_back_to_pending_and_keeps_its_trace(
    outbox: Outbox, db: Database, nc: NatsClient, migrated: Settings, org: AuthContext, spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("tests").start_as_current_span("staging") as staging:
        messages = await stage(db, outbox, org, 2)

    refused = OutboxRelay(outbox, db, nc.jetstream(), stream="NO_SUCH_STREAM")  # JetStream refuses each publish
    assert await refused.relay_once() == 0 and refused.failures == 2
    async with db.transaction() as session:
        rows = (await session.execute(text(f"SELECT sent_at, last_error, attempts FROM {outbox.schema}.outbox"))).all()
    assert [(sent_at, attempts) for sent_at, _, attempts in rows] == [(None, 1)] * 2
    assert all(last_error for _, last_error, _ in rows)  # why, for whoever looks
    failed = producer_spans(spans, messages)
    assert all(span.status.status_code == StatusCode.ERROR for (span,) in failed.values())

    relay = OutboxRelay(outbox, db, nc.jetstream(), stream=migrated.events_stream)
    assert await relay.relay_once() == 2
    sent = await published(nc, migrated.events_stream, org)
    staged_under = staging.get_span_context()
    for message in messages:
        first, second = producer_spans(spans, messages)[message.id]
        assert second.parent.span_id == first.parent.span_id == staged_under.span_id
        assert sent[str(message.id)].headers["traceparent"] == traceparent(second.get_span_context())


async def test_a_row_whose_trace_headers_cannot_be_read_fails_alone(
    outbox: Outbox, db: Database, nc: NatsClient, migrated: Settings, org: AuthContext
) -> None:
    good = await stage(db, outbox, org, 2)
    (bad,) = await stage(db, outbox, org, 1)
    async with db.transaction() as session:
        await session.execute(text(f"""UPDATE {outbox.schema}.outbox SET trace_headers = '{{"traceparent": 5}}'"""
                                    " WHERE id = :id"), {"id": bad.id})

    relay = OutboxRelay(outbox, db, nc.jetstream(), stream=migrated.events_stream)
    assert await relay.relay_once() == 2 and relay.failures == 1
    assert set(await published(nc, migrated.events_stream, org)) == {str(m.id) for m in good}
    async with db.transaction() as session:
        row = (await session.execute(text(f"SELECT sent_at, last_error FROM {outbox.schema}.outbox WHERE id = :id"),
                                     {"id": bad.id})).one()
    assert row.sent_at is None and "TypeError" in row.last_error


async def test_a_stream_that_refuses_a_publish_is_an_error_both_ways(nc: NatsClient, migrated: Settings,
                                                                       outbox: Outbox) -> None:
    """An ack that carries an error (here: the message's expected stream is not the one its subject lands in)
    raises, whether the ack is read (`publish_to_stream`) or only checked (`store_in_stream`, the relay's)."""
    subject = subjects.event("native", uuid7(), EVENT)
    for publish in (publish_to_stream, store_in_stream):
        with pytest.raises(APIError):
            await publish(nc.jetstream(), subject, b"{}", uuid7(), stream="NOT_THE_EVENTS_STREAM")
    ack = await publish_to_stream(nc.jetstream(), subject, b"{}", uuid7(), stream=migrated.events_stream)
    assert ack.stream == migrated.events_stream and ack.seq > 0 and not ack.duplicate
