"""Thin subscribers: bytes in, checked envelope, one transaction, bytes out.

`ServiceRouter.handler(spec)` registers a function `(ctx, payload) -> result`.
The router subscribes (queue group per service) to the spec's subject, decodes
and validates the envelope, opens the transaction with the tenant set, calls the
function, commits, and replies. Any `OneError` becomes a typed error reply; any
other exception becomes `internal` with an error id (logged with its stack),
never an exception escaping into the broker.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from faststream.nats import NatsRouter
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared import subjects
from shared.envelope import AuthContext, Envelope, MessageSpec, Protocol, check_request, decode_envelope, encode_reply
from shared.errors import Internal, OneError, Unauthenticated
from shared.ids import uuid7

if TYPE_CHECKING:
    from shared.service import ServiceRuntime

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
        if self.envelope.org_id is None or self.envelope.actor_id is None:
            raise Unauthenticated("this operation needs an auth context")
        return AuthContext(self.envelope.org_id, self.envelope.actor_id)

    async def emit(
        self, event_type: str, payload: dict[str, Any], *, org_id: UUID | None = None, protocol: Protocol | None = None
    ) -> Envelope:
        """Stage a domain event in this request's transaction (published after commit)."""
        if self.session is None:
            raise RuntimeError("emit() needs a transactional handler")
        self.staged_events += 1
        return await self.runtime.outbox.add_event(
            self.session,
            event_type=event_type,
            org_id=org_id or self.auth.org_id,
            actor_id=self.envelope.actor_id,
            payload=payload,
            protocol=protocol or self.envelope.protocol,
            cause=self.envelope,
        )


Handler = Callable[[RequestContext, Any], Awaitable[BaseModel]]


async def _raw_body(message: Any) -> bytes:
    """Skip FastStream's JSON decoding: the envelope is parsed exactly once, by us."""
    return message.body


class ServiceRouter:
    def __init__(self, service: str) -> None:
        self.service = service
        self.router = NatsRouter()
        self.runtime: "ServiceRuntime | None" = None
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._specs_by_subject: dict[str, dict[str, MessageSpec[Any, Any]]] = {}

    @property
    def specs(self) -> list[MessageSpec[Any, Any]]:
        return [spec for specs in self._specs_by_subject.values() for spec in specs.values()]

    def handler(self, spec: MessageSpec[Any, Any], *, transactional: bool = True) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            if spec.type in self._handlers:
                raise ValueError(f"{self.service}: {spec.type!r} already has a handler")
            self._handlers[spec.type] = (fn, transactional)
            self._specs_by_subject.setdefault(spec.subject, {})[spec.type] = spec
            return fn

        return register

    def subscribe_all(self, concurrency: int) -> None:
        """Create one queue-group subscriber per subject (called once, at start-up)."""
        for subject, specs in self._specs_by_subject.items():
            self._subscribe(subject, specs, concurrency)

    def _subscribe(self, subject: str, specs: dict[str, MessageSpec[Any, Any]], concurrency: int) -> None:
        async def on_message(body: bytes) -> bytes:
            return await self.dispatch(body, specs)

        on_message.__name__ = f"handle_{subject.replace('.', '_')}"
        self.router.subscriber(
            subject, queue=subjects.queue_group(self.service), decoder=_raw_body, max_workers=concurrency
        )(on_message)

    async def dispatch(self, raw: bytes, specs: dict[str, MessageSpec[Any, Any]]) -> bytes:
        envelope: Envelope | None = None
        try:
            envelope = decode_envelope(raw)
            payload, spec = check_request(envelope, specs)
            return encode_reply(envelope, await self._call(envelope, payload, spec))
        except OneError as error:
            return encode_reply(envelope, error)
        except Exception:
            error_id = uuid7()
            log.exception("%s: unexpected error %s handling %s", self.service, error_id, envelope.type if envelope else "?")
            return encode_reply(envelope, Internal("internal error", {"error_id": str(error_id)}))

    async def _call(self, envelope: Envelope, payload: BaseModel, spec: MessageSpec[Any, Any]) -> BaseModel:
        runtime = self.runtime
        assert runtime is not None, "router used before the service started"
        fn, transactional = self._handlers[spec.type]
        if not transactional:
            return await fn(RequestContext(envelope, None, runtime), payload)
        async with runtime.db.transaction(envelope.org_id) as session:
            ctx = RequestContext(envelope, session, runtime)
            result = await fn(ctx, payload)
        if ctx.staged_events:
            runtime.relay.wake()
        return result
