"""The eventlog service's subscribers: append, query, tail and analytics, each a call into `service`.

The ingest (`ONE_EVENTS` -> Postgres) and the tail notifier start with each replica (`replica`).
"""

from services.eventlog import service
from services.eventlog.replica import start_replica, stop_replica
from services.eventlog.settings import EventlogSettings
from shared import __version__
from shared.contracts.eventlog import (
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
    Appended,
    AppendedBatch,
    AppendEvent,
    DailyCounts,
    DailyCountsQuery,
    DeadLetterQuery,
    DeadLetters,
    EventlogStats,
    EventPage,
    EventQuery,
    EventTail,
    Revenue,
    RevenueQuery,
    StatsQuery,
    TailPage,
    ThingHistory,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("eventlog")


@router.handler(APPEND, transactional=False)
async def append_event(ctx: WorkContext, payload: AppendEvent) -> Appended:
    return await service.append_event(ctx, payload)


@router.handler(APPEND_BATCH, transactional=False)
async def append_events(ctx: WorkContext, payload: AppendBatch) -> AppendedBatch:
    return AppendedBatch(events=await service.append_events(ctx, payload.events))


@router.handler(QUERY)
async def query_events(ctx: WorkContext, q: EventQuery) -> EventPage:
    return await service.query_events(ctx, q)


@router.handler(HISTORY)
async def thing_history(ctx: WorkContext, q: ThingHistory) -> EventPage:
    return await service.thing_history(ctx, q)


@router.handler(TAIL, transactional=False)
async def tail_events(ctx: WorkContext, q: EventTail) -> TailPage:
    return await service.tail_events(ctx, q)


@router.handler(DAILY_COUNTS)
async def count_daily(ctx: WorkContext, q: DailyCountsQuery) -> DailyCounts:
    return await service.count_daily(ctx, q)


@router.handler(REVENUE)
async def revenue_by_protocol(ctx: WorkContext, q: RevenueQuery) -> Revenue:
    return await service.revenue_by_protocol(ctx, q)


@router.handler(DEAD_LETTERS)
async def list_dead_letters(ctx: WorkContext, q: DeadLetterQuery) -> DeadLetters:
    return await service.list_dead_letters(ctx, q)


@router.handler(STATS)
async def eventlog_stats(ctx: WorkContext, _: StatsQuery) -> EventlogStats:
    return await service.eventlog_stats(ctx)


definition = ServiceDefinition(
    name="eventlog",
    version=__version__,
    router=router,
    settings=EventlogSettings,
    on_start=[start_replica],
    on_stop=[stop_replica],
)
