"""The eventlog service: append, query, tail and analytics subjects, and the ingest started with it."""

import asyncio
import time
import weakref
from dataclasses import dataclass

from opentelemetry import propagate

from services.eventlog import repository
from services.eventlog.ingest import EventIngest
from services.eventlog.schemas import (
    APPEND,
    APPEND_BATCH,
    DAILY_COUNTS,
    DEAD_LETTERS,
    HISTORY,
    QUERY,
    REVENUE,
    STATS,
    TAIL,
    AppendBatch,
    AppendedBatch,
    AppendEvent,
    Appended,
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
    StatsQuery,
    TailPage,
    ThingHistory,
)
from services.eventlog.service import check_event_type, event_id_for
from services.eventlog.tail import POLL_INTERVAL, CommitNotifier
from shared import __version__
from shared.kernel import subjects
from shared.kernel.envelope import Envelope
from shared.kernel.events import EventPayload
from shared.runtime.handlers import RequestContext, ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime

router = ServiceRouter("eventlog")


@dataclass
class EventlogState:
    notifier: CommitNotifier
    ingest: EventIngest


_state: "weakref.WeakKeyDictionary[ServiceRuntime, EventlogState]" = weakref.WeakKeyDictionary()


async def start_eventlog(runtime: ServiceRuntime) -> None:
    """The tail notifier and this replica's share of the ingest consumer."""
    nc = runtime.broker.connection
    state = EventlogState(CommitNotifier(), EventIngest(runtime.settings))
    await state.notifier.start(nc)
    await state.ingest.start(nc)
    _state[runtime] = state


async def stop_eventlog(runtime: ServiceRuntime) -> None:
    state = _state.pop(runtime, None)
    if state is not None:
        await state.ingest.stop()
        await state.notifier.stop()


def _build_event(ctx: RequestContext, item: AppendEvent, index: int | None) -> Envelope:
    """The domain event for one appended item: auth from the request envelope, type made canonical."""
    request = ctx.envelope
    checked = check_event_type(item.type, item.metadata)
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


async def _publish(ctx: RequestContext, events: list[Envelope]) -> list[Appended]:
    """Into `ONE_EVENTS`, acked by JetStream; `Nats-Msg-Id` = event id, so a retry is a duplicate."""
    js = ctx.runtime.broker.connection.jetstream()
    stream = ctx.runtime.settings.events_stream

    async def one(event: Envelope) -> Appended:
        subject = subjects.event(event.protocol.value, event.org_id, event.type)
        headers = {"Nats-Msg-Id": str(event.id)}
        propagate.inject(headers)
        ack = await js.publish(subject, event.to_bytes(), stream=stream, headers=headers)
        return Appended(id=event.id, type=event.type, subject=subject, stream_seq=ack.seq, duplicate=bool(ack.duplicate))

    return list(await asyncio.gather(*(one(e) for e in events)))


@router.handler(APPEND, transactional=False)
async def append_event(ctx: RequestContext, payload: AppendEvent) -> Appended:
    return (await _publish(ctx, [_build_event(ctx, payload, None)]))[0]


@router.handler(APPEND_BATCH, transactional=False)
async def append_events(ctx: RequestContext, payload: AppendBatch) -> AppendedBatch:
    """All or nothing at validation: one invalid item refuses the batch before anything is published."""
    events = [_build_event(ctx, item, i) for i, item in enumerate(payload.events)]
    return AppendedBatch(events=await _publish(ctx, events))


def _page(events: list[EventRecord], limit: int) -> EventPage:
    return EventPage(events=events, next_cursor=events[-1].position if len(events) == limit else None)


@router.handler(QUERY)
async def query_events(ctx: RequestContext, q: EventQuery) -> EventPage:
    events = await repository.find_events(
        ctx.session, ctx.auth.org_id, q, after=q.after, before=q.before, descending=q.order == "desc", limit=q.limit
    )
    return _page(events, q.limit)


@router.handler(HISTORY)
async def thing_history(ctx: RequestContext, q: ThingHistory) -> EventPage:
    """Everything that happened to or by a thing, newest first."""
    events = await repository.find_events(
        ctx.session, ctx.auth.org_id, EventFilter(thing_id=q.thing_id), before=q.before, descending=True, limit=q.limit
    )
    return _page(events, q.limit)


@router.handler(TAIL, transactional=False)
async def tail_events(ctx: RequestContext, q: EventTail) -> TailPage:
    """Long-poll: events after `q.after` as soon as there are any, or none when `wait` runs out.

    No transaction is held while waiting; positions become visible in order, so
    a reader that resumes from its `cursor` misses nothing and sees nothing twice.
    """
    org_id, runtime = ctx.auth.org_id, ctx.runtime
    deadline = time.monotonic() + min(q.wait, runtime.settings.eventlog_tail_max_wait)
    state = _state.get(runtime)
    notifier = state.notifier if state else CommitNotifier()
    while True:
        with notifier.waiter(org_id) as woken:
            async with runtime.db.transaction(org_id) as session:
                events = await repository.find_events(session, org_id, q, after=q.after, limit=q.limit)
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return TailPage(events=events, cursor=events[-1].position if events else q.after)
            try:
                await asyncio.wait_for(woken.wait(), min(remaining, POLL_INTERVAL))
            except TimeoutError:
                pass


@router.handler(DAILY_COUNTS)
async def count_daily(ctx: RequestContext, q: DailyCountsQuery) -> DailyCounts:
    return DailyCounts(counts=await repository.daily_counts(ctx.session, ctx.auth.org_id, q.since, q.until, q.types))


@router.handler(REVENUE)
async def revenue_by_protocol(ctx: RequestContext, q: RevenueQuery) -> Revenue:
    totals = await repository.revenue_by_protocol(ctx.session, ctx.auth.org_id, q.since, q.until, q.status, q.currency)
    by_protocol: dict = {}
    for row in totals:
        by_protocol[row.protocol] = by_protocol.get(row.protocol, 0) + row.total
    return Revenue(totals=totals, by_protocol=by_protocol)


@router.handler(DEAD_LETTERS)
async def list_dead_letters(ctx: RequestContext, q: DeadLetterQuery) -> DeadLetters:
    return DeadLetters(dead_letters=await repository.dead_letters(ctx.session, ctx.auth.org_id, q.after_id, q.limit))


@router.handler(STATS)
async def eventlog_stats(ctx: RequestContext, _: StatsQuery) -> EventlogStats:
    state = _state.get(ctx.runtime)
    return EventlogStats(
        ingest=state.ingest.counters if state else EventIngest(ctx.runtime.settings).counters,
        org_events=await repository.count_events(ctx.session, ctx.auth.org_id),
        org_dead_letters=await repository.dead_letter_counts(ctx.session, ctx.auth.org_id),
    )


definition = ServiceDefinition(
    name="eventlog",
    version=__version__,
    router=router,
    on_start=[start_eventlog],
    on_stop=[stop_eventlog],
)
