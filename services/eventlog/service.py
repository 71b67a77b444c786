"""The event log's work for a caller: append events, read the org's log, sum it up. No SQL, no NATS.

Each operation asks the caller's role first: appending is `events:create`, reading
events (query, history, tail, dead letters) is `events:list`, the aggregates (daily
counts, revenue, stats) are `events:read`. The built-in roles let a `customer` append
but read nothing of the org's log; an org refines that with its own policies.
"""

import asyncio
import time
from uuid import UUID, uuid5

from services.eventlog import repository
from services.eventlog.checks import check_event_type
from services.eventlog.publish import publish_events
from services.eventlog.replica import replica_of
from services.eventlog.tail import POLL_INTERVAL
from shared.contracts.eventlog import (
    Appended,
    AppendEvent,
    DailyCounts,
    DailyCountsQuery,
    DeadLetterQuery,
    DeadLetters,
    EventFilter,
    EventlogStats,
    EventPage,
    EventQuery,
    EventRecord,
    EventTail,
    Revenue,
    RevenueQuery,
    TailPage,
    ThingHistory,
)
from shared.kernel.envelope import Envelope
from shared.kernel.events import EventPayload
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

RESOURCE = "events"


def event_id_for(envelope_id: UUID, index: int | None) -> UUID:
    """The event id an append gets by default: the envelope id, or a stable id per batch item,
    so a retried request (same envelope) appends nothing new."""
    return envelope_id if index is None else uuid5(envelope_id, str(index))


def build_event(ctx: WorkContext, item: AppendEvent, index: int | None) -> Envelope:
    """The domain event for one appended item: who and which org from the request, the type made canonical,
    over the request's protocol (which a protocol-specific event without `metadata.protocol` belongs to)."""
    request = ctx.envelope
    checked = check_event_type(item.type, item.metadata, request.protocol)
    payload = EventPayload(target_id=item.target_id, target_type=item.target_type, metadata=item.metadata | checked.patch)
    return Envelope(
        id=item.id or event_id_for(request.id, index),
        protocol=request.protocol,
        type=checked.type.value,
        org_id=ctx.auth.org_id,
        actor_id=ctx.auth.actor_id,
        correlation_id=request.correlation_id or request.id,
        causation_id=request.id,
        occurred_at=item.occurred_at or request.occurred_at,
        payload=payload.model_dump(mode="json"),
    )


async def append_event(ctx: WorkContext, item: AppendEvent) -> Appended:
    require(ctx.auth, RESOURCE, "create")
    return (await publish_events(ctx.runtime, [build_event(ctx, item, None)]))[0]


async def append_events(ctx: WorkContext, items: list[AppendEvent]) -> list[Appended]:
    """All or nothing at validation: one invalid item refuses the batch before anything is published."""
    require(ctx.auth, RESOURCE, "create")
    return await publish_events(ctx.runtime, [build_event(ctx, item, i) for i, item in enumerate(items)])


def _page(events: list[EventRecord], limit: int) -> EventPage:
    return EventPage(events=events, next_cursor=events[-1].position if len(events) == limit else None)


async def query_events(ctx: WorkContext, q: EventQuery) -> EventPage:
    require(ctx.auth, RESOURCE, "list")
    events = await repository.find_events(
        ctx.session, ctx.auth.org_id, q, after=q.after, before=q.before, descending=q.order == "desc", limit=q.limit
    )
    return _page(events, q.limit)


async def thing_history(ctx: WorkContext, q: ThingHistory) -> EventPage:
    """Everything that happened to or by a thing, newest first."""
    require(ctx.auth, RESOURCE, "list")
    events = await repository.find_events(
        ctx.session, ctx.auth.org_id, EventFilter(thing_id=q.thing_id), before=q.before, descending=True, limit=q.limit
    )
    return _page(events, q.limit)


async def tail_events(ctx: WorkContext, q: EventTail) -> TailPage:
    """Long-poll: events after `q.after` as soon as there are any, or none when `wait` runs out.

    No transaction is held while waiting; positions become visible in order, so
    a reader that resumes from its `cursor` misses nothing and sees nothing twice.
    """
    require(ctx.auth, RESOURCE, "list")
    org_id, runtime = ctx.auth.org_id, ctx.runtime
    deadline = time.monotonic() + min(q.wait, runtime.settings.eventlog_tail_max_wait)
    notifier = replica_of(runtime).notifier
    while True:
        with notifier.waiter(org_id) as woken:
            async with ctx.transaction() as tx:
                events = await repository.find_events(tx.session, org_id, q, after=q.after, limit=q.limit)
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return TailPage(events=events, cursor=events[-1].position if events else q.after)
            try:
                await asyncio.wait_for(woken.wait(), min(remaining, POLL_INTERVAL))
            except TimeoutError:
                pass


async def count_daily(ctx: WorkContext, q: DailyCountsQuery) -> DailyCounts:
    require(ctx.auth, RESOURCE, "read")
    return DailyCounts(counts=await repository.daily_counts(ctx.session, ctx.auth.org_id, q.since, q.until, q.types))


async def revenue_by_protocol(ctx: WorkContext, q: RevenueQuery) -> Revenue:
    require(ctx.auth, RESOURCE, "read")
    totals = await repository.revenue_by_protocol(ctx.session, ctx.auth.org_id, q.since, q.until, q.status, q.currency)
    by_protocol: dict = {}
    for row in totals:
        by_protocol[row.protocol] = by_protocol.get(row.protocol, 0) + row.total
    return Revenue(totals=totals, by_protocol=by_protocol)


async def list_dead_letters(ctx: WorkContext, q: DeadLetterQuery) -> DeadLetters:
    require(ctx.auth, RESOURCE, "list")
    return DeadLetters(dead_letters=await repository.find_dead_letters(ctx.session, ctx.auth.org_id, q.after_id, q.limit))


async def eventlog_stats(ctx: WorkContext) -> EventlogStats:
    """This replica's ingest counters and the caller's org's totals."""
    require(ctx.auth, RESOURCE, "read")
    return EventlogStats(
        ingest=replica_of(ctx.runtime).ingest.counters,
        org_events=await repository.count_events(ctx.session, ctx.auth.org_id),
        org_dead_letters=await repository.dead_letter_counts(ctx.session, ctx.auth.org_id),
    )
