"""The work context: one way for a service to know who it works for and to act.

Every piece of work a service does — answering a request, reacting to an event,
running a job — gets a `WorkContext`: the envelope that caused it (org, actor,
protocol, correlation), the open transaction if there is one, and the runtime.
From it the work

- reads who it acts for (`auth`), to check RBAC;
- stages domain events in its transaction (`emit`), published after commit;
- calls other services (`call`), passing the auth context, the protocol, the
  correlation and the causation along, so a trace and an audit chain follow it;
- opens a transaction late (`transaction`), after slow work that must not hold a
  connection, and wakes the outbox relay when it staged events.

Background work nobody asked for has no caller's credential: it runs as the
service itself (`service_identity`), with the few grants its definition declares,
never with a made-up actor.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.kernel.envelope import AuthContext, Envelope, MessageSpec, Protocol
from shared.kernel.errors import Unauthenticated
from shared.kernel.events import EventPayload
from shared.runtime.outbox import EventMessages, Outbox, OutboxMessage

if TYPE_CHECKING:
    from shared.runtime.service import ServiceRuntime

R = TypeVar("R", bound=BaseModel)


def service_actor_id(service: str) -> UUID:
    """The stable actor id a service acts as: the same in every replica and every release."""
    return uuid5(NAMESPACE_URL, f"one:service:{service}")


def service_identity(service: str, org_id: UUID, grants: Sequence[str], on_behalf_of: UUID | None = None) -> AuthContext:
    """The auth context of a service's own work in an org: role `service:<name>`, nothing but its grants.

    `on_behalf_of` keeps the person whose action started the work as the actor (an
    event's actor), so what the work writes is still attributed to them; the
    permissions stay the service's.
    """
    permissions = tuple(f"allow:{grant}:0" for grant in grants)
    return AuthContext(org_id, on_behalf_of or service_actor_id(service), f"service:{service}", permissions, tuple(grants))


@dataclass
class WorkContext:
    """What a piece of work gets besides its payload: the envelope, its transaction, the runtime."""

    envelope: Envelope
    session: AsyncConnection | None
    runtime: "ServiceRuntime"
    staged_events: int = 0

    @property
    def auth(self) -> AuthContext:
        """Who the work acts for, with the role, permissions and scopes stamped at the edge."""
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
        """Stage a domain event in this work's transaction (published after commit)."""
        payload = EventPayload(target_id=target_id, target_type=target_type, metadata=metadata or {})
        return (await self.emit_many([(event_type, payload)], org_id=org_id, protocol=protocol))[0]

    async def emit_many(
        self, events: Sequence[tuple[str, EventPayload]], *, org_id: UUID | None = None, protocol: Protocol | None = None
    ) -> list[Envelope]:
        """Stage several domain events with one statement, e.g. for a batch create; returns their envelopes, read
        back from what was staged (as every reader will have them)."""
        if self.session is None:
            raise RuntimeError("emit() needs a transaction: use a transactional handler or `async with ctx.transaction()`")
        messages = self.event_messages(events, org_id=org_id, protocol=protocol)
        await self.runtime.outbox.add_many(self.session, messages)
        return [message.envelope for message in messages]

    def event_messages(
        self, events: Sequence[tuple[str, EventPayload | bytes]], *, org_id: UUID | None = None,
        protocol: Protocol | None = None,
    ) -> list[OutboxMessage]:
        """The messages of domain events caused by this work, counted as staged: `emit_many` stages them, or a
        statement that writes rows and their events in one round trip (`Outbox.insert_select`). A payload is a
        model or its JSON already (`shared.kernel.events.event_payload_json`)."""
        cause = self.envelope
        of_this_work = EventMessages(protocol or cause.protocol, org_id or self.auth.org_id, cause.actor_id, cause)
        messages = [of_this_work.message(event_type, payload if isinstance(payload, bytes) else payload.to_bytes())
                    for event_type, payload in events]
        self.staged_events += len(messages)
        return messages

    async def call(
        self,
        spec: MessageSpec[Any, R],
        payload: BaseModel | dict[str, Any] | None = None,
        *,
        auth: AuthContext | None = None,
        timeout: float | None = None,
        protocol: Protocol | None = None,
    ) -> R:
        """Ask another service, as this work: its auth (or `auth`), protocol, correlation and causation go along.

        `protocol` overrides the work's own tag for a service that does not speak it (a payment protocol's
        handler writing to the graph, which takes `native` messages). Raises the typed error the service
        replied with, or `Unavailable`. Never call out while holding a transaction you could commit first:
        the other service may be slow, and a connection held meanwhile is one the pool lacks.
        """
        envelope = self.envelope
        return await self.runtime.bus.request(
            spec,
            payload,
            auth or self.auth,
            protocol=protocol or envelope.protocol,
            correlation_id=envelope.correlation_id or envelope.id,
            causation_id=envelope.id,
            timeout=timeout,
        )

    @asynccontextmanager
    async def transaction(self, statement_timeout_ms: int | None = None) -> AsyncIterator["WorkContext"]:
        """Open this work's transaction now, on its org (Row-Level Security set to it; none for org-less work such as
        a signup): commits when the block ends, rolls back if it raises.

        For work that does something slow first (embedding, a call to another
        service) and must not hold a connection meanwhile, or whose statements need a
        bound (`statement_timeout_ms`). The relay is woken after the commit when the
        block staged events.
        """
        runtime = self.runtime
        async with runtime.db.transaction(self.envelope.org_id, statement_timeout_ms=statement_timeout_ms) as session:
            tx = WorkContext(self.envelope, session, runtime)
            yield tx
        if tx.staged_events:
            runtime.relay.wake()


@dataclass(frozen=True)
class _SetupRuntime:
    """The runtime of work done before any replica of the service runs: an outbox to stage events in, nothing else."""

    name: str
    outbox: Outbox

    @property
    def bus(self) -> Any:
        raise RuntimeError(f"{self.name}: setup work cannot call other services (no replica runs yet)")

    @property
    def db(self) -> Any:
        raise RuntimeError(f"{self.name}: setup work runs in the transaction it was given")


def setup_context(service: str, session: AsyncConnection, task: str) -> WorkContext:
    """A context for a service's setup work in `session` before any replica runs (e.g. the platform bootstrap).

    It acts as the service itself, in no org (the work names the orgs it writes
    to), and stages its events in the service's outbox inside `session`, for the
    first replica's relay to publish.
    """
    envelope = Envelope(type=f"{service}.{task}", actor_id=service_actor_id(service), role=f"service:{service}")
    return WorkContext(envelope, session, _SetupRuntime(service, Outbox(service)))  # type: ignore[arg-type]
