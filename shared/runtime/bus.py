"""The broker: a FastStream `NatsBroker` with telemetry, the `ONE_EVENTS` stream, and publishing into it."""

import asyncio
import itertools
import json
import logging
import weakref
from uuid import UUID

from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.security import SASLPlaintext
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, Header, PubAck, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError
from opentelemetry import propagate

from shared.kernel import subjects
from shared.kernel.settings import Settings
from shared.runtime.nats_options import connect_options
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


_NO_RESPONDERS = "503"


class ReplyInbox:
    """One wildcard inbox subscription for every request of a client (`BusClient`) or a connection's JetStream
    publishes (`publish_to_stream`).

    It is what nats-py's `request()` does, minus its per-call costs that showed
    in profiles: a random token from the OS (a syscall), an `asyncio.wait_for`
    and a timer per call. A counter names the reply inbox, and one timer, set for
    the earliest deadline of the requests waiting, expires those that are due.
    """

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.prefix: str | None = None
        self.pending: dict[str, tuple[asyncio.Future[Msg], float]] = {}
        self._counter = itertools.count()
        self._subscribing = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def request(self, subject: str, body: bytes, headers: dict[str, str], timeout: float) -> Msg:
        prefix = self.prefix or await self._subscribe()
        inbox = f"{prefix}{next(self._counter)}"
        loop = self._loop
        future: asyncio.Future[Msg] = loop.create_future()
        deadline = loop.time() + timeout
        self.pending[inbox] = (future, deadline)
        if self._timer is None or deadline < self._timer.when():
            self._expire_at(deadline)
        try:
            await self.nc.publish(subject, body, reply=inbox, headers=headers)
            reply = await future
        finally:
            del self.pending[inbox]
        if reply.headers and reply.headers.get(Header.STATUS) == _NO_RESPONDERS:  # the server's "nobody listens"
            raise NoRespondersError
        return reply

    async def _subscribe(self) -> str:
        async with self._subscribing:
            if self.prefix is None:
                prefix = f"{self.nc.new_inbox()}."
                await self.nc.subscribe(f"{prefix}*", cb=self._deliver)
                self._loop = asyncio.get_running_loop()
                self.prefix = prefix
        return self.prefix

    async def _deliver(self, msg: Msg) -> None:
        waiting = self.pending.get(msg.subject)
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(msg)

    def _expire_at(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._expire_due)

    def _expire_due(self) -> None:
        """Time out the requests past their deadline; wait for the earliest of the others."""
        self._timer = None
        now, earliest = self._loop.time(), None
        for future, deadline in list(self.pending.values()):
            if deadline <= now:
                if not future.done():
                    future.set_exception(NatsTimeout())
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self._expire_at(earliest)


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
    headers = {"Nats-Msg-Id": str(message_id), Header.EXPECTED_STREAM: stream}
    if trace_headers is None:
        propagate.inject(headers)
    else:
        headers.update(trace_headers)
    try:
        reply = await reply_inbox(js._nc).request(subject, body, headers, js._timeout)  # noqa: SLF001
    except NoRespondersError:
        raise NoStreamResponseError from None
    ack = json.loads(reply.data)
    if "error" in ack:
        raise APIError.from_error(ack["error"])
    return PubAck.from_response(ack)


_INBOXES: weakref.WeakKeyDictionary[NatsClient, ReplyInbox] = weakref.WeakKeyDictionary()


def reply_inbox(nc: NatsClient) -> ReplyInbox:
    """The connection's one inbox for JetStream acks (subscribed on first use)."""
    inbox = _INBOXES.get(nc)
    if inbox is None:
        inbox = _INBOXES[nc] = ReplyInbox(nc)
    return inbox
