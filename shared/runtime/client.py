"""The one way to call a service: `await bus.request(type, payload, ctx)`.

Used by services calling each other, the CLI and the tests. It builds the
envelope, carries the trace context in NATS headers, and returns the typed result
or raises the typed error the service replied with. A missing service or a timeout
becomes `Unavailable`, never a bare nats exception.
"""

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import MaxPayloadError, NoRespondersError, TimeoutError as NatsTimeout
from pydantic import BaseModel
from pydantic_core import to_json

from shared.kernel.envelope import AuthContext, Envelope, MessageSpec, Protocol, decode_reply, message_spec, utcnow
from shared.kernel.errors import PayloadTooLarge, Unavailable
from shared.kernel.ids import uuid7
from shared.runtime.replies import ReplyInbox
from shared.runtime.nats_options import connect_options
from shared.runtime.tracing import outgoing_trace

if TYPE_CHECKING:  # a client given its settings (the CLI's, read without pydantic-settings) never loads them
    from shared.kernel.settings import Settings

R = TypeVar("R", bound=BaseModel)


class BusClient:
    def __init__(self, nc: NatsClient, *, timeout: float = 10.0, owns_connection: bool = False) -> None:
        self.nc = nc
        self.timeout = timeout
        self._replies = ReplyInbox(nc)
        self._owns_connection = owns_connection

    @classmethod
    async def connect(cls, settings: "Settings | None" = None, name: str = "one-client") -> "BusClient":
        if settings is None:
            from shared.kernel.settings import get_settings

            settings = get_settings()
        nc = await nats.connect(**{**connect_options(settings, name), "max_reconnect_attempts": 5})
        return cls(nc, timeout=settings.request_timeout, owns_connection=True)

    async def close(self) -> None:
        if self._owns_connection and not self.nc.is_closed:
            await self.nc.drain()

    async def __aenter__(self) -> "BusClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def request(
        self,
        message: MessageSpec[Any, R] | str,
        payload: BaseModel | dict[str, Any] | None = None,
        ctx: AuthContext | None = None,
        *,
        protocol: Protocol = Protocol.NATIVE,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        timeout: float | None = None,
    ) -> R:
        """Send one request. The envelope is serialised straight to JSON (no model
        round-trip): the service validates it strictly, the client need not twice."""
        spec = message_spec(message) if isinstance(message, str) else message
        # Fields left at the envelope's default are left out: the service reads them as those defaults.
        envelope: dict[str, Any] = {
            "id": uuid7(),
            "type": spec.type,
            "occurred_at": utcnow(),
            "payload": {} if payload is None else payload,
        }
        if protocol != Protocol.NATIVE:
            envelope["protocol"] = str(protocol)  # the plain value: serialising an enum member is slow
        if ctx is not None:
            envelope["org_id"], envelope["actor_id"] = ctx.org_id, ctx.actor_id
            if ctx.role is not None:
                envelope["role"] = ctx.role
            if ctx.permissions:
                envelope["permissions"] = ctx.permissions
            if ctx.scopes:
                envelope["scopes"] = ctx.scopes
        if correlation_id is not None:
            envelope["correlation_id"] = correlation_id
        if causation_id is not None:
            envelope["causation_id"] = causation_id
        body = to_json(envelope)
        return await self._send(spec, body, timeout)

    async def send(self, spec: MessageSpec[Any, R], envelope: Envelope, *, timeout: float | None = None) -> R:
        """Send a ready-made envelope (the gateway's path: it stamps auth itself)."""
        return await self._send(spec, envelope.to_bytes(), timeout)

    async def _send(self, spec: MessageSpec[Any, R], body: bytes, timeout: float | None) -> R:
        # The span is not made current: nothing runs under it but the network wait. The trace
        # context travels even when not sampled, so the service keeps the same decision.
        span, headers = outgoing_trace(
            f"{spec.subject} send",
            lambda: {"messaging.system": "nats", "messaging.destination.name": spec.subject, "one.message.type": spec.type},
        )
        try:
            reply = await self._replies.request(spec.subject, body, headers, timeout or self.timeout)
        except MaxPayloadError:
            limit = self.nc.max_payload
            raise PayloadTooLarge(f"a {spec.type} request of {len(body):,} bytes exceeds the broker's {limit:,}",
                                  {"size": len(body), "max_payload": limit}) from None
        except NoRespondersError:
            raise Unavailable(f"no service answers {spec.subject}", {"subject": spec.subject}) from None
        except NatsTimeout:
            raise Unavailable(f"{spec.subject} did not answer in time", {"subject": spec.subject}) from None
        finally:
            if span is not None:
                span.end()
        return decode_reply(reply.data, spec)


