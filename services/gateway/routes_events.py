"""The event log's REST routes: append, read and sum up the org's events, each one bus request.

Bodies and query strings are the contract's payload models (`shared.contracts.eventlog`), replies
its result models. A query string carries every field of a query model but two it cannot: an
object (`metadata`, sent as JSON) and a null (`status` of revenue, sent empty). Pages are the
log's own: `next_cursor` is the `after` (asc) or `before` (desc) of the next request. Who appends
and for which org is the verified key's; an `org_id` anywhere is refused like any unknown field.
A client follows the log live with the event stream (`routes_stream`: the long-poll `event.tail` as SSE).
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BeforeValidator, Field, Json

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus, _set
from services.gateway.shapes import derived
from shared.contracts.eventlog import (
    APPEND,
    APPEND_BATCH,
    DAILY_COUNTS,
    DEAD_LETTERS,
    HISTORY,
    QUERY,
    REVENUE,
    STATS,
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
    Revenue,
    RevenueQuery,
    StatsQuery,
    ThingHistory,
)

METADATA_PARAM = (Json[dict[str, Any]] | None, Field(
    None, description='Events whose metadata contains this JSON object: `metadata={"status":"processed"}`.',
))
"""The filter's `metadata` object as a query string carries it: JSON (shared with the event stream's query)."""
EventListQuery = derived(EventQuery, "EventListQuery", metadata=METADATA_PARAM)
HistoryQuery = derived(ThingHistory, "HistoryQuery", drop=("thing_id",))
RevenueParams = derived(RevenueQuery, "RevenueParams", status=(
    Annotated[str | None, BeforeValidator(lambda value: value or None)],
    Field("processed", description="payment_event metadata.status to count; empty (`status=`) = every status."),
))

router = APIRouter(prefix="/v1", tags=["events"])


@router.post("/events", status_code=201, responses=WRITE)
async def append_event(body: AppendEvent, caller: Caller, bus: Bus) -> Appended:
    return await bus.request(APPEND, body, caller)


@router.post("/events/batch", status_code=201, responses=WRITE)
async def append_events(body: AppendBatch, caller: Caller, bus: Bus) -> AppendedBatch:
    return await bus.request(APPEND_BATCH, body, caller)


@router.get("/events", responses=READ)
async def query_events(query: Annotated[EventListQuery, Query()], caller: Caller, bus: Bus) -> EventPage:  # type: ignore[valid-type]
    return await bus.request(QUERY, _set(query), caller)


@router.get("/events/stats", responses=READ)
async def event_stats(query: Annotated[StatsQuery, Query()], caller: Caller, bus: Bus) -> EventlogStats:
    return await bus.request(STATS, query, caller)


@router.get("/events/daily-counts", responses=READ)
async def daily_counts(query: Annotated[DailyCountsQuery, Query()], caller: Caller, bus: Bus) -> DailyCounts:
    return await bus.request(DAILY_COUNTS, query, caller)


@router.get("/events/revenue", responses=READ)
async def revenue(query: Annotated[RevenueParams, Query()], caller: Caller, bus: Bus) -> Revenue:  # type: ignore[valid-type]
    return await bus.request(REVENUE, _set(query), caller)


@router.get("/events/dead-letters", responses=READ)
async def dead_letters(query: Annotated[DeadLetterQuery, Query()], caller: Caller, bus: Bus) -> DeadLetters:
    return await bus.request(DEAD_LETTERS, query, caller)


@router.get("/things/{id}/history", responses=READ)
async def thing_history(id: UUID, query: Annotated[HistoryQuery, Query()], caller: Caller, bus: Bus) -> EventPage:  # type: ignore[valid-type]
    return await bus.request(HISTORY, {"thing_id": id, **_set(query)}, caller)
