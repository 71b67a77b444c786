"""`one.events`: publish, query, tail, analytics and replay of the org's event log, on either transport.

    await one.events.publish("payment_processed", metadata={"protocol": "x402", "amount": 5})
    async for event in one.events.tail(types=["payment_event"]):
        ...  # one.events.cursor is the position to resume from (`tail(after=...)`)

Over the bus an envelope's protocol can be stamped (`Events.over_bus(bus, ctx, protocol=Protocol.X402)`:
the log fills `metadata.protocol` itself); over HTTP the tail is the gateway's event stream (SSE).
Publishing is idempotent per envelope on the bus: a retry after `Unavailable` resends the same
envelope, so the event log stores the event once.
"""

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic_core import to_jsonable_python

from shared.contracts.eventlog import (
    APPEND,
    APPEND_BATCH,
    DAILY_COUNTS,
    DEAD_LETTERS,
    HISTORY,
    MAX_BATCH,
    QUERY,
    REVENUE,
    STATS,
    TAIL,
    Appended,
    AppendEvent,
    DailyCounts,
    DeadLetters,
    EventlogStats,
    EventPage,
    EventRecord,
    Revenue,
    TailPage,
)
from shared.kernel.envelope import AuthContext, Envelope, Protocol
from shared.kernel.events import EventPayload
from shared.tools.sdk.transport import NoHttpRoute, Transport

if TYPE_CHECKING:
    from shared.runtime.client import BusClient

Progress = Callable[[int, int], None]  # (done, total)


class Events:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.cursor = 0

    @classmethod
    def over_bus(cls, bus: "BusClient", ctx: AuthContext, *, protocol: Protocol = Protocol.NATIVE) -> "Events":
        """The event log for an auth context the caller already holds (a verified one, or a test's)."""
        from shared.tools.sdk.bus import BusTransport

        return cls(BusTransport(bus, ctx, protocol=protocol))

    async def _send(self, spec: Any, payload: dict[str, Any], *, timeout: float | None = None) -> Any:
        return await self.transport.request(spec, payload, timeout=timeout, retry=True)

    # --- publishing ---------------------------------------------------------

    async def publish(
        self,
        type: str,
        *,
        target_id: UUID | None = None,
        target_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        id: UUID | None = None,
    ) -> Appended:
        item = AppendEvent(
            type=type, target_id=target_id, target_type=target_type, metadata=metadata or {}, occurred_at=occurred_at, id=id
        )
        return await self._send(APPEND, item.model_dump(mode="json", exclude_none=True))

    async def publish_many(
        self, items: Iterable[AppendEvent | dict[str, Any]], *, chunk: int = 500, progress: Progress | None = None
    ) -> list[Appended]:
        """Many events, `chunk` per request; each chunk is validated as a whole before any of it is published."""
        events = [AppendEvent.model_validate(i) for i in items]
        chunk = min(chunk, MAX_BATCH)
        appended: list[Appended] = []
        for start in range(0, len(events), chunk):
            part = [e.model_dump(mode="json", exclude_none=True) for e in events[start : start + chunk]]
            appended += (await self._send(APPEND_BATCH, {"events": part})).events
            if progress:
                progress(len(appended), len(events))
        return appended

    # --- reading ------------------------------------------------------------

    async def query(self, **filters: Any) -> EventPage:
        """`types`, `actor_id`, `target_id`, `thing_id`, `protocols`, `since`, `until`, `metadata`,
        `after`/`before` cursors, `order`, `limit` (see `EventQuery`)."""
        return await self._send(QUERY, _jsonable(filters))

    async def iterate(self, **filters: Any) -> AsyncIterator[EventRecord]:
        """Every matching event, page by page in position order."""
        after = filters.pop("after", None)
        while True:
            page = await self.query(**filters, after=after, order="asc")
            for event in page.events:
                yield event
            if page.next_cursor is None:
                return
            after = page.next_cursor

    async def history(self, thing_id: UUID, *, before: int | None = None, limit: int = 100) -> EventPage:
        """A thing's events as actor or target, newest first."""
        return await self._send(HISTORY, _jsonable({"thing_id": thing_id, "before": before, "limit": limit}))

    async def tail_page(self, *, after: int, wait: float = 10.0, **filters: Any) -> TailPage:
        """One long-poll of the tail (the bus only; over HTTP, `tail` follows the event stream)."""
        payload = _jsonable({**filters, "after": after, "wait": wait})
        return await self._send(TAIL, payload, timeout=wait + self._bus().timeout)

    async def tail(self, *, after: int | None = None, wait: float = 10.0, **filters: Any) -> AsyncIterator[EventRecord]:
        """New events as they are committed, forever; resume a broken tail with `after=self.cursor`."""
        if after is not None:
            self.cursor = after
        if self.transport.kind == "http":
            stream = self.transport.stream(TAIL, _jsonable({**filters, "after": self.cursor}), item=EventRecord)  # type: ignore[attr-defined]
            async for event in stream:
                self.cursor = event.position
                yield event
            return
        while True:
            page = await self.tail_page(after=self.cursor, wait=wait, **filters)
            for event in page.events:
                self.cursor = event.position
                yield event
            self.cursor = max(self.cursor, page.cursor)

    async def daily_counts(self, since: datetime, until: datetime, types: list[str] | None = None) -> DailyCounts:
        return await self._send(DAILY_COUNTS, _jsonable({"since": since, "until": until, "types": types or []}))

    async def revenue(
        self, since: datetime, until: datetime, *, status: str | None = "processed", currency: str | None = None
    ) -> Revenue:
        payload = {"since": since, "until": until, "status": status, "currency": currency}
        return await self._send(REVENUE, _jsonable(payload, keep_none=("status",)))

    async def dead_letters(self, *, after_id: int = 0, limit: int = 100) -> DeadLetters:
        return await self._send(DEAD_LETTERS, {"after_id": after_id, "limit": limit})

    async def stats(self) -> EventlogStats:
        return await self._send(STATS, {})

    # --- replay -------------------------------------------------------------

    async def replay(
        self,
        subject: str,
        *,
        from_position: int = 0,
        to_position: int | None = None,
        progress: Progress | None = None,
        **filters: Any,
    ) -> int:
        """Re-publish the org's events with positions in [from, to] to `subject`, in order, as event
        envelopes (header `One-Position`), to rebuild a read model. Core NATS: the reader must be listening."""
        from shared.runtime.bus import server_has_everything_sent

        bus = self._bus()
        total = to_position - from_position + 1 if to_position is not None else 0
        sent = 0
        async for event in self.iterate(**filters, after=max(from_position - 1, 0) if from_position else None):
            if to_position is not None and event.position > to_position:
                break
            await bus.nc.publish(subject, event_envelope(event).to_bytes(), headers={"One-Position": str(event.position)})
            sent += 1
            if progress:
                progress(sent, max(total, sent))
        await server_has_everything_sent(bus.nc)
        return sent

    def _bus(self) -> "BusClient":
        bus = getattr(self.transport, "bus", None)
        if bus is None:
            raise NoHttpRoute("this needs the bus (NATS_URL, or the embedded stack of `one up`), not HTTP")
        return bus


def event_envelope(event: EventRecord) -> Envelope:
    """A stored event as the domain-event envelope it arrived in (type and metadata canonical)."""
    return Envelope(
        id=event.id,
        protocol=Protocol(event.transport_protocol),
        type=event.type,
        org_id=event.org_id,
        actor_id=event.actor_id,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        occurred_at=event.occurred_at,
        payload=EventPayload(target_id=event.target_id, target_type=event.target_type, metadata=event.metadata).model_dump(
            mode="json"
        ),
    )


def _jsonable(values: dict[str, Any], keep_none: tuple[str, ...] = ()) -> dict[str, Any]:
    """The filters that were given, as JSON values (a None is "not given", but for `keep_none`)."""
    return {key: to_jsonable_python(value) for key, value in values.items() if value is not None or key in keep_none}
