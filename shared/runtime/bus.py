"""The broker: a FastStream `NatsBroker` with telemetry, the `ONE_EVENTS` stream, and publishing into it."""

import json
import logging
from uuid import UUID

from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.security import SASLPlaintext
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, Header, PubAck, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError
from opentelemetry import propagate

from shared.kernel import subjects
from shared.kernel.settings import Settings
from shared.runtime.nats_options import connect_options
from shared.runtime.replies import reply_inbox
from shared.runtime.tracing import tracer_provider

log = logging.getLogger(__name__)


async def server_has_everything_sent(nc: NatsClient) -> None:
    """Return once the server has processed every command this connection sent so far.

    nats-py's `flush()` alone does not promise that: it writes its PING straight to
    the socket, ahead of commands still queued for its flusher task (a SUB just
    made, a PUB), so the PONG can come back before the server has seen them, and a
    request from another connection then finds no subscriber ("no responders"; seen
    on a busy machine). The first flush lets the flusher write its queue (it is
    woken before any PONG can be read); the second PING follows those commands.
    """
    await nc.flush()
    await nc.flush()


def make_broker(settings: Settings, service: str) -> NatsBroker:
    """A broker whose per-message log lines go to DEBUG: at 20k msg/s INFO logging is the bottleneck."""
    provider = tracer_provider()
    middlewares = (NatsTelemetryMiddleware(tracer_provider=provider),) if provider else ()
    options = connect_options(settings, f"one-{service}")
    # NatsBroker takes credentials only as `security` (it has no user/password arguments).
    user, password = options.pop("user", None), options.pop("password", None)
    return NatsBroker(
        **options,
        security=SASLPlaintext(username=user, password=password or "") if user else None,
        logger=logging.getLogger(f"one.{service}.broker"),
        log_level=logging.DEBUG,
        middlewares=middlewares,
        graceful_timeout=15.0,
    )


def events_stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.events_stream,
        subjects=[subjects.ALL_EVENTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=settings.events_stream_replicas,
        duplicate_window=settings.events_duplicate_window,
    )


def dead_letters_stream_config(settings: Settings) -> StreamConfig:
    """Dead letters wait here until the event log has stored them (a month at most)."""
    return StreamConfig(
        name=settings.dead_letters_stream,
        subjects=[subjects.ALL_DEAD_LETTERS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=settings.events_stream_replicas,
        duplicate_window=settings.events_duplicate_window,
        max_age=30 * 24 * 3600.0,
    )


async def ensure_events_stream(js: JetStreamContext, settings: Settings) -> None:
    """Declare `ONE_EVENTS` (idempotent); Postgres is the record, the stream the transport."""
    await ensure_stream(js, events_stream_config(settings))


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an older one's subjects and duplicate window up to date."""
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", config.name)
        return
    if info.config.subjects != config.subjects or info.config.duplicate_window != config.duplicate_window:
        await js.update_stream(config)
        log.info("updated stream %s", config.name)


async def publish_to_stream(
    js: JetStreamContext, subject: str, body: bytes, message_id: UUID, *, stream: str,
    trace_headers: dict[str, str] | None = None,
) -> PubAck:
    """Publish one message into a JetStream stream and wait for its ack.

    `Nats-Msg-Id` is the envelope id, so a retry of the same message inside the
    stream's duplicate window is dropped by the server (the ack says `duplicate`);
    the trace context (`trace_headers`, or the current one) goes in the headers, so
    the consumer joins the trace. The ack comes back through the connection's
    `ReplyInbox`, as `js.publish` would have it but without its per-message token
    and timer (a relay publishes every event: ~10 µs less CPU each).
    """
    return PubAck.from_response(json.loads(await _acked(js, subject, body, message_id, stream, trace_headers)))


async def store_in_stream(
    js: JetStreamContext, subject: str, body: bytes, message_id: UUID, *, stream: str,
    trace_headers: dict[str, str] | None = None,
) -> None:
    """`publish_to_stream` for a caller that needs to know only that the stream stored the message (the outbox
    relay): its ack is checked for an error, not read into a `PubAck` (~2 µs per message)."""
    await _acked(js, subject, body, message_id, stream, trace_headers)


async def _acked(js: JetStreamContext, subject: str, body: bytes, message_id: UUID, stream: str,
                 trace_headers: dict[str, str] | None) -> bytes:
    """The stream's ack of the message (JSON), or the `APIError` it answered."""
    headers = {"Nats-Msg-Id": str(message_id), Header.EXPECTED_STREAM: stream}
    if trace_headers is None:
        propagate.inject(headers)
    else:
        headers.update(trace_headers)
    try:
        reply = await reply_inbox(js._nc).request(subject, body, headers, js._timeout)  # noqa: SLF001
    except NoRespondersError:
        raise NoStreamResponseError from None
    if b'"error"' in reply.data and (error := json.loads(reply.data).get("error")):
        raise APIError.from_error(error)
    return reply.data
