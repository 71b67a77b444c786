"""The running process of one service: broker, database, outbox relay, health, and its state.

Every service is the same shape: a `ServiceRouter` with its handlers, a schema
with migrations (unless it owns none, like the gateway), its settings class, and
this runtime around them. The runtime holds what one replica has of its own
(`state`) and issues contexts for work nobody requested (`background`). `health`
is answered here, once, for every service.
"""

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from faststream import FastStream
from faststream.nats import NatsBroker
from pydantic import BaseModel

from shared.kernel import subjects
from shared.kernel.envelope import Empty, Envelope, MessageSpec, Protocol, register_message
from shared.kernel.settings import Settings, get_settings
from shared.runtime.bus import ensure_events_stream, make_broker, server_has_everything_sent
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext, service_identity
from shared.runtime.db import Database
from shared.runtime.handlers import ServiceRouter, Serving
from shared.runtime.migrate import load_migrations, migrate_services, schema_version
from shared.runtime.outbox import Outbox, OutboxRelay
from shared.runtime.tracing import setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)
GC_THRESHOLDS = (50_000, 20, 100)
"""The collector's thresholds in a service process (CPython's are 700, 10, 10). A request allocates thousands of
short-lived objects (envelopes, rows, models), few of them in cycles: at the defaults a 500-thing batch create
spent 10-14 % of its time in full collections of 20-100 ms each; with these, −22 % of the graph's CPU per thing."""


def settle_collector() -> None:
    """Once a process has started: its start-up objects live forever (frozen out of every later GC pass), and the
    collector runs at `GC_THRESHOLDS`. Every service process (the gateway too) does this when it has started."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class SchemaHealth(BaseModel):
    name: str
    version: int
    expected: int
    state: Literal["current", "behind", "ahead", "unreachable", "none"]  # none: the service owns no schema


class BrokerHealth(BaseModel):
    connected: bool
    server: str | None
    jetstream: bool


class HealthReport(BaseModel):
    service: str
    version: str
    healthy: bool
    uptime_seconds: float
    schema_state: SchemaHealth
    broker: BrokerHealth
    outbox_pending: int | None


def health_spec(service: str) -> MessageSpec[Empty, HealthReport]:
    return register_message(f"{service}.health", subjects.health(service), Empty, HealthReport, requires_auth=False)


Hook = Callable[["ServiceRuntime"], Awaitable[None]]


@dataclass
class ServiceDefinition:
    """What makes a service: its handlers, its schema, its own grants, and background work started with it."""

    name: str
    version: str
    router: ServiceRouter
    migrations: str = field(default="")
    owns_schema: bool = True  # False: stateless (the gateway): no migrations, no database, no outbox
    grants: tuple[str, ...] = ()  # scopes of the service's own background work in an org (`runtime.background`)
    settings: type[Settings] = Settings  # the service's own settings class (`services/<name>/settings.py`)
    on_start: list[Hook] = field(default_factory=list)  # after the broker and database are up
    on_stop: list[Hook] = field(default_factory=list)  # after requests stopped, before the outbox flush

    def __post_init__(self) -> None:
        if self.owns_schema:
            self.migrations = self.migrations or f"services.{self.name}.migrations"
        self.router.handler(health_spec(self.name), transactional=False)(_health)


async def _health(ctx: WorkContext, _: Empty) -> HealthReport:
    return await ctx.runtime.health()


class ServiceRuntime:
    """One running service: a FastStream app whose lifecycle hooks bring up the rest.

    on_startup: tracing, migrations, database; the broker connects; after_startup:
    the events stream, the outbox relay, the request subscriptions and the
    service's own hooks. Shutdown runs the same steps backwards, so requests
    stop first and the outbox and traces are flushed last.
    """

    def __init__(self, definition: ServiceDefinition, settings: Settings | None = None) -> None:
        self.definition = definition
        # callers hold the common settings; `runtime.settings` is the service's own class (its fields from the env)
        self.settings = definition.settings.from_common(settings or get_settings())
        self.name = definition.name
        self.expected_schema_version = len(load_migrations(definition.migrations)) if definition.owns_schema else 0
        setup_tracing(self.name, settings=self.settings)  # before the broker: its middleware needs the provider
        self.broker: NatsBroker = make_broker(self.settings, self.name)
        self.app = FastStream(
            self.broker,
            logger=log,
            on_startup=[self._open],
            after_startup=[self._serve],
            on_shutdown=[self._quiesce],
            after_shutdown=[self._close],
        )
        self.db: Database | None = None
        self.outbox = Outbox(self.name)
        self.relay: OutboxRelay | None = None
        self.bus: BusClient | None = None
        self.state: Any = None  # the service's per-replica state, set by its on_start hooks
        self._serving: Serving | None = None
        self._migrate = True
        self._relay_task: asyncio.Task[None] | None = None
        self._started_at = time.monotonic()

    async def start(self, *, migrate: bool = True) -> None:
        self._migrate = migrate
        await self.app.start()

    async def stop(self) -> None:
        """Stop taking requests, finish in-flight ones, flush the outbox and traces."""
        await self.app.stop()

    async def run_until_signalled(self) -> None:
        """`one serve <service>`: FastStream runs the app until SIGTERM/SIGINT, then shuts down."""
        await self.app.run()

    async def _open(self) -> None:
        if not self.definition.owns_schema:
            return
        if self._migrate:
            await migrate_services(self.settings, {self.name: self.definition.migrations})
        self.db = Database.for_app(self.settings, self.name)

    async def _serve(self) -> None:
        js = self.broker.config.connection_state.stream
        await ensure_events_stream(js, self.settings)
        self.bus = BusClient(self.broker.connection, timeout=self.settings.request_timeout)
        if self.db is not None:
            self.relay = OutboxRelay(
                self.outbox,
                self.db,
                js,
                stream=self.settings.events_stream,
                batch_size=self.settings.outbox_batch_size,
                poll_interval=self.settings.outbox_poll_interval,
            )
            self._relay_task = asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox-relay")
        for hook in self.definition.on_start:  # before the router: a service answers once it is ready
            await hook(self)
        self._serving = await self.definition.router.serve(
            self, self.broker.connection, self.settings.handler_concurrency, self.settings.handler_queue_limit)
        await server_has_everything_sent(self.broker.connection)  # "started" means reachable
        self._started_at = time.monotonic()
        settle_collector()
        log.info("%s %s started", self.name, self.definition.version)

    async def _quiesce(self) -> None:
        if self._serving is not None:
            await self._serving.stop()
        for hook in self.definition.on_stop:
            await hook(self)
        if self.relay is not None and self._relay_task is not None:
            self.relay.stop()
            await self._relay_task

    async def _close(self) -> None:
        if self.db is not None:
            await self.db.dispose()
        shutdown_tracing()
        log.info("%s stopped", self.name)

    def background(
        self,
        org_id: UUID,
        *,
        cause: Envelope | None = None,
        on_behalf_of: UUID | None = None,
        correlation_id: UUID | None = None,
    ) -> WorkContext:
        """A context for work no caller asked for in `org_id` (an event's consequence, a job), as this service.

        It acts with the service's own identity and grants (`ServiceDefinition.grants`);
        `on_behalf_of` keeps the person who caused it as the actor. Correlation and
        causation come from `cause`, so the work joins the chain that led to it;
        `correlation_id` names the chain instead (e.g. a job's id). No transaction is
        open: `async with ctx.transaction()` when it needs one.
        """
        auth = service_identity(self.name, org_id, self.definition.grants, on_behalf_of)
        envelope = Envelope(
            protocol=cause.protocol if cause else Protocol.NATIVE,
            type=f"{self.name}.background",
            org_id=auth.org_id,
            actor_id=auth.actor_id,
            role=auth.role,
            permissions=auth.permissions,
            scopes=auth.scopes,
            correlation_id=correlation_id or ((cause.correlation_id or cause.id) if cause else None),
            causation_id=cause.id if cause else None,
        )
        return WorkContext(envelope, None, self)

    async def health(self) -> HealthReport:
        schema, pending = await self._schema_health()
        nc = self.broker.connection if self.broker else None
        broker = BrokerHealth(
            connected=bool(nc and nc.is_connected),
            server=str(nc.connected_url.netloc) if nc and nc.connected_url else None,
            jetstream=bool(nc and nc.is_connected and nc._server_info.get("jetstream")),
        )
        return HealthReport(
            service=self.name,
            version=self.definition.version,
            healthy=schema.state in ("current", "none") and broker.connected,
            uptime_seconds=round(time.monotonic() - self._started_at, 3),
            schema_state=schema,
            broker=broker,
            outbox_pending=pending,
        )


    async def _schema_health(self) -> tuple[SchemaHealth, int | None]:
        """The schema's version against this release's migrations, and the outbox rows not yet sent."""
        schema = SchemaHealth(name=self.name, version=0, expected=self.expected_schema_version, state="unreachable")
        if not self.definition.owns_schema:
            return schema.model_copy(update={"state": "none"}), None
        try:
            async with self.db.transaction() as session:
                version = await schema_version(session, self.name)
                pending = await self.outbox.pending(session)
        except Exception as error:
            log.warning("%s health: database unreachable: %r", self.name, error)
            return schema, None
        state = "current" if version == schema.expected else ("behind" if version < schema.expected else "ahead")
        return schema.model_copy(update={"version": version, "state": state}), pending
