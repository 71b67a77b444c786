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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any
from uuid import UUID

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.runtime import metrics

from shared.kernel import subjects
from shared.runtime.eager import start_eagerly
from shared.kernel.envelope import (
    AuthContext,
    Encoded,
    Envelope,
    MessageSpec,
    Protocol,
    check_request,
    decode_envelope,
    encode_reply,
)
from shared.kernel.errors import Internal, OneError, PayloadTooLarge, Unauthenticated
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.runtime.outbox import event_message
from shared.runtime.slots import Slots
from shared.runtime.tracing import consume_span

if TYPE_CHECKING:
    from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass
class RequestContext:
    """What a handler gets besides its payload: the envelope, its transaction, the runtime."""

    envelope: Envelope
    session: AsyncSession | None
    runtime: "ServiceRuntime"
    staged_events: int = 0

    @property
    def auth(self) -> AuthContext:
        """Who asks, with the role, permissions and scopes stamped at the edge."""
        envelope = self.envelope
        if envelope.org_id is None or envelope.actor_id is None:
            raise Unauthenticated("this operation needs an auth context")
        return AuthContext(envelope.org_id, envelope.actor_id, envelope.role, envelope.permissions, envelope.scopes)

    async def emit(
        self,
        event_type: str,
        *,
        target_id: UUID | None = None,
        target_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        org_id: UUID | None = None,
        protocol: Protocol | None = None,
    ) -> Envelope:
        """Stage a domain event in this request's transaction (published after commit)."""
        payload = EventPayload(target_id=target_id, target_type=target_type, metadata=metadata or {})
        return (await self.emit_many([(event_type, payload)], org_id=org_id, protocol=protocol))[0]

    async def emit_many(
        self, events: Sequence[tuple[str, EventPayload]], *, org_id: UUID | None = None, protocol: Protocol | None = None
    ) -> list[Envelope]:
        """Stage several domain events with one statement, e.g. for a batch create."""
        if self.session is None:
            raise RuntimeError("emit() needs a transactional handler")
        org_id, protocol = org_id or self.auth.org_id, protocol or self.envelope.protocol
        messages = [
            event_message(event_type, org_id, self.envelope.actor_id, payload.model_dump(mode="json"), protocol, self.envelope)
            for event_type, payload in events
        ]
        await self.runtime.outbox.add_many(self.session, messages)
        self.staged_events += len(messages)
        return [envelope for _, envelope in messages]


Handler = Callable[[RequestContext, Any], Awaitable[BaseModel | Encoded[Any]]]


class ServiceRouter:
    """A service's request/reply handlers, subscribed on the broker's NATS connection.

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
        self.runtime: "ServiceRuntime | None" = None
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._eager: set[str] = set()
        self._specs_by_subject: dict[str, dict[str, MessageSpec[Any, Any]]] = {}
        self._subscriptions: list[Subscription] = []
        self._nc: NatsClient | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

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
            if spec.type in self._handlers:
                raise ValueError(f"{self.service}: {spec.type!r} already has a handler")
            self._handlers[spec.type] = (fn, transactional)
            if eager:
                self._eager.add(spec.type)
            self._specs_by_subject.setdefault(spec.subject, {})[spec.type] = spec
            return fn

        return register

    async def start(self, nc: NatsClient, concurrency: int) -> None:
        """One queue-group subscription per subject; at most `concurrency` messages in progress."""
        self._nc = nc
        slots = Slots(concurrency)
        for subject, specs in self._specs_by_subject.items():
            eager = self._eager.issuperset(specs)
            self._subscriptions.append(
                await nc.subscribe(subject, queue=subjects.queue_group(self.service), cb=self._receiver(specs, slots, eager))
            )

    def _receiver(
        self, specs: dict[str, MessageSpec[Any, Any]], slots: Slots, eager: bool
    ) -> Callable[[Msg], Awaitable[None]]:
        loop = asyncio.get_running_loop()

        def track(task: asyncio.Task[None]) -> None:
            slots.take()
            self._in_flight.add(task)
            task.add_done_callback(lambda t: (self._in_flight.discard(t), slots.give()))

        async def receive(msg: Msg) -> None:
            if slots.free <= 0:
                await slots.wait_for_one()
            track(loop.create_task(self._respond(msg, specs)))  # the loop's own method: no running-loop lookup

        async def receive_eagerly(msg: Msg) -> None:
            if slots.free <= 0:
                await slots.wait_for_one()
            task = start_eagerly(self._respond(msg, specs))
            if task is not None:  # it has to wait: now it takes a slot
                track(task)

        return receive_eagerly if eager else receive

    async def _respond(self, msg: Msg, specs: dict[str, MessageSpec[Any, Any]]) -> None:
        with consume_span(msg.subject, msg.headers):
            reply = await self.dispatch(msg.data, specs)
        if msg.reply:
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
        if self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def dispatch(self, raw: bytes, specs: dict[str, MessageSpec[Any, Any]]) -> bytes:
        started = perf_counter()
        envelope: Envelope | None = None
        message_type = metrics.UNKNOWN_TYPE
        try:
            envelope = decode_envelope(raw)
            if envelope.type in specs:
                message_type = envelope.type
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
        assert runtime is not None, "router used before the service started"
        fn, transactional = self._handlers[spec.type]
        if not transactional:
            return fn(RequestContext(envelope, None, runtime), payload)
        return self._call_in_transaction(fn, envelope, payload, runtime)

    async def _call_in_transaction(
        self, fn: Handler, envelope: Envelope, payload: BaseModel, runtime: "ServiceRuntime"
    ) -> BaseModel | Encoded[Any]:
        async with runtime.db.transaction(envelope.org_id) as session:
            ctx = RequestContext(envelope, session, runtime)
            result = await fn(ctx, payload)
        if ctx.staged_events:
            runtime.relay.wake()
        return result
