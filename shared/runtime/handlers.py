"""Thin subscribers: bytes in, checked envelope, one transaction, bytes out.

`ServiceRouter.handler(spec)` registers a function `(ctx, payload) -> result`.
The router subscribes (queue group per service) to the spec's subject, decodes
and validates the envelope, opens the transaction with the tenant set, calls the
function, commits, and replies. Any `OneError` becomes a typed error reply; any
other exception becomes `internal` with an error id (logged with its stack),
never an exception escaping into the broker.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel

from shared.kernel import subjects
from shared.kernel.envelope import (
    Encoded,
    Envelope,
    MessageSpec,
    check_request,
    decode_envelope,
    encode_reply,
    refuse_nul_characters,
)
from shared.kernel.errors import Internal, OneError, PayloadTooLarge, Unavailable
from shared.kernel.ids import uuid7
from shared.runtime import metrics
from shared.runtime.context import WorkContext
from shared.runtime.eager import start_eagerly
from shared.runtime.slots import Slots
from shared.runtime.tracing import consume_span

if TYPE_CHECKING:
    from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


Handler = Callable[[WorkContext, Any], Awaitable[BaseModel | Encoded[Any]]]


class ServiceRouter:
    """A service's table of request/reply handlers: which function answers which message type.

    The table is static (declared at import, shared by every replica in the
    process); `serve(runtime)` subscribes one replica's handlers and returns what
    it needs to stop them, so no replica's state lives on the router.

    Why not FastStream subscribers here: measured on this machine, FastStream's
    per-message pipeline (context, middlewares, fast-depends, reply publisher)
    costs more than our whole latency budget (p50 1.5x bare nats-py, see
    `make bench`), and its `max_workers` mode cuts throughput by two thirds. So
    request/reply subjects use a plain queue subscription with one CONSUMER span
    per message (named like FastStream's, joined to the caller's trace) and
    bounded concurrency; FastStream still owns the connection, JetStream and
    publishing, with its telemetry middleware.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.handlers: dict[str, tuple[Handler, bool]] = {}
        self.eager: set[str] = set()
        self.specs_by_subject: dict[str, dict[str, MessageSpec[Any, Any]]] = {}

    def handler(
        self, spec: MessageSpec[Any, Any], *, transactional: bool = True, eager: bool = False
    ) -> Callable[[Handler], Handler]:
        """Register `fn` for `spec`; `transactional` opens the org's transaction around it.

        `eager` (non-transactional only) is for hot handlers that usually answer
        without waiting (e.g. a cache hit): each message starts at once instead of
        in a task of its own, and only one that has to wait gets a task. Such a
        handler must not capture the current task before its first await
        (`asyncio.timeout()`, `TaskGroup`; see `shared.runtime.eager`).
        """
        if eager and transactional:
            raise ValueError(f"{self.service}: {spec.type!r}: a transactional handler always waits, it cannot be eager")

        def register(fn: Handler) -> Handler:
            if spec.type in self.handlers:
                raise ValueError(f"{self.service}: {spec.type!r} already has a handler")
            self.handlers[spec.type] = (fn, transactional)
            if eager:
                self.eager.add(spec.type)
            self.specs_by_subject.setdefault(spec.subject, {})[spec.type] = spec
            return fn

        return register

    def include(self, other: "ServiceRouter") -> None:
        """Take `other`'s handlers into this table: a service splits its subscribers by domain (`app_jobs.py`)."""
        if other.service != self.service:
            raise ValueError(f"{self.service}: cannot include {other.service!r}'s handlers")
        for type_, entry in other.handlers.items():
            if type_ in self.handlers:
                raise ValueError(f"{self.service}: {type_!r} already has a handler")
            self.handlers[type_] = entry
        self.eager |= other.eager
        for subject, specs in other.specs_by_subject.items():
            self.specs_by_subject.setdefault(subject, {}).update(specs)

    async def serve(
        self, runtime: "ServiceRuntime", nc: NatsClient, concurrency: int, queue_limit: int
    ) -> "Serving":
        """Subscribe this replica's handlers: one queue-group subscription per subject, at most `concurrency` at
        once, at most `queue_limit` waiting per subscription before the oldest is refused as overloaded."""
        serving = Serving(self, runtime, nc)
        await serving.subscribe(concurrency, queue_limit)
        return serving


class Serving:
    """One replica's subscriptions to its router's subjects, and the requests it has in progress."""

    def __init__(self, router: ServiceRouter, runtime: "ServiceRuntime", nc: NatsClient) -> None:
        self.service = router.service
        self.router = router
        self.runtime = runtime
        self._nc = nc
        self._subscriptions: list[Subscription] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._refusals: set[asyncio.Task[None]] = set()

    async def subscribe(self, concurrency: int, queue_limit: int) -> None:
        self._slots = slots = Slots(concurrency, queue_limit)
        nc, group = self._nc, subjects.queue_group(self.service)
        for subject, specs in self.router.specs_by_subject.items():
            eager = self.router.eager.issuperset(specs)
            self._subscriptions.append(await nc.subscribe(subject, queue=group, cb=self._receiver(specs, slots, eager)))

    def _receiver(
        self, specs: dict[str, MessageSpec[Any, Any]], slots: Slots, eager: bool
    ) -> Callable[[Msg], Awaitable[None]]:
        """The subscription's callback: start the request now if a slot is free, else line it up (never block
        the subscription: a blocked callback would leave the line unbounded in the client's buffer)."""
        loop = asyncio.get_running_loop()

        def track(task: asyncio.Task[None]) -> None:
            slots.take()
            self._in_flight.add(task)
            task.add_done_callback(lambda t: (self._in_flight.discard(t), slots.give()))

        def start(msg: Msg) -> None:
            track(loop.create_task(self._respond(msg, specs)))  # the loop's own method: no running-loop lookup

        def start_eager(msg: Msg) -> None:
            task = start_eagerly(self._respond(msg, specs))
            if task is not None:  # it has to wait: now it takes a slot
                track(task)

        begin = start_eager if eager else start

        async def receive(msg: Msg) -> None:
            if slots.has_room():
                begin(msg)
            else:  # one that waited starts in a task of its own (from a finished request's callback)
                slots.wait(partial(start, msg), partial(self._refuse, msg))

        return receive

    def _refuse(self, msg: Msg) -> None:
        """Answer one waiting request `unavailable` undone: the service is up but has more waiting than it can
        answer in time (`handler_queue_limit`); the caller may retry after `retry_after` seconds."""
        metrics.observe(self.service, metrics.UNKNOWN_TYPE, "overloaded", 0.0)
        if not msg.reply:
            return
        error = Unavailable(f"{self.service} is overloaded: more than {self._slots.queue_limit} requests wait for "
                            "a turn; retry shortly", {"reason": "overloaded", "service": self.service, "retry_after": 1})
        task = asyncio.get_running_loop().create_task(self._reply(msg, encode_reply(None, error)))
        self._refusals.add(task)
        task.add_done_callback(self._refusals.discard)

    async def _respond(self, msg: Msg, specs: dict[str, MessageSpec[Any, Any]]) -> None:
        with consume_span(msg.subject, msg.headers):
            reply = await self.dispatch(msg.data, specs)
        if msg.reply:
            await self._reply(msg, reply)

    async def _reply(self, msg: Msg, reply: bytes) -> None:
        try:
            # Not `msg.respond()`: it would echo the request's headers back with the reply.
            await self._nc.publish(msg.reply, reply)
        except Exception as error:  # the caller's connection is gone; nothing else to tell
            log.warning("%s: could not reply on %s: %r", self.service, msg.subject, error)

    async def stop(self) -> None:
        """Stop taking requests, then let the ones received or in progress finish and reply."""
        for subscription in self._subscriptions:
            await subscription.drain()
        self._subscriptions.clear()
        while self._in_flight or self._refusals:  # those in line start as the ones in progress end
            await asyncio.gather(*self._in_flight, *self._refusals, return_exceptions=True)

    async def dispatch(self, raw: bytes, specs: dict[str, MessageSpec[Any, Any]]) -> bytes:
        started = perf_counter()
        envelope: Envelope | None = None
        message_type = metrics.UNKNOWN_TYPE
        try:
            envelope = decode_envelope(raw)
            if envelope.type in specs:
                message_type = envelope.type
            refuse_nul_characters(raw, envelope.payload)
            payload, spec = check_request(envelope, specs)
            reply = encode_reply(envelope, await self._call(envelope, payload, spec))
            if len(reply) > self._nc.max_payload:  # it could not be sent: the caller would only time out
                raise PayloadTooLarge(f"the reply to {spec.type} would be {len(reply):,} bytes, more than the "
                                      f"broker's {self._nc.max_payload:,}: ask for less",
                                      {"size": len(reply), "max_payload": self._nc.max_payload})
            outcome = "ok"
        except OneError as error:
            reply, outcome = encode_reply(envelope, error), error.code
        except Exception:
            error_id = uuid7()
            log.exception("%s: unexpected error %s handling %s", self.service, error_id, envelope.type if envelope else "?")
            error = Internal("internal error", {"error_id": str(error_id)})
            reply, outcome = encode_reply(envelope, error), error.code
        metrics.observe(self.service, message_type, outcome, perf_counter() - started)
        return reply

    def _call(
        self, envelope: Envelope, payload: BaseModel, spec: MessageSpec[Any, Any]
    ) -> Awaitable[BaseModel | Encoded[Any]]:
        """The handler's awaitable, in a transaction when it is transactional (one coroutine less when not)."""
        runtime = self.runtime
        fn, transactional = self.router.handlers[spec.type]
        if not transactional:
            return fn(WorkContext(envelope, None, runtime), payload)
        return self._call_in_transaction(fn, envelope, payload, runtime)

    async def _call_in_transaction(
        self, fn: Handler, envelope: Envelope, payload: BaseModel, runtime: "ServiceRuntime"
    ) -> BaseModel | Encoded[Any]:
        async with WorkContext(envelope, None, runtime).transaction() as ctx:
            return await fn(ctx, payload)
