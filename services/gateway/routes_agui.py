"""A run as an AG-UI event stream (SSE): the streaming chat, and `GET /v1/runs/{id}/events` of any run of the org.

The agents service stores each step of a run, then publishes it on the run's step subject (core
NATS); text deltas are only published. A stream subscribes first, then reads the stored steps and
follows the live ones, dropping those it already sent (`seq`), so there is no gap and no repeat;
a live step that skips a `seq` (core NATS dropped one) makes it read the store again. A streamed
chat subscribes to the org's step subjects before it starts the run, so it sees every step and
every delta; a stream opened later sees a completion's deltas only when it saw the step before
them live, and otherwise sends that text whole from its stored step. Every `HEARTBEAT_SECONDS`
without a step it sends a `: heartbeat` comment and reads the store (a run that ended meanwhile
ends the stream). The stream ends with RUN_FINISHED or RUN_ERROR, or when the client leaves: the
subscription is the response's, and goes with it. A refusal found before the stream starts (an
unknown run, another org's, a bad key) is an ordinary problem response.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Gauge

from services.gateway.agui import RunEvents
from services.gateway.auth import Caller
from services.gateway.problems import one_error_response
from services.gateway.routes_graph import READ, Bus
from services.gateway.routes_stream import HEARTBEAT, HEARTBEAT_SECONDS, EventStream
from shared.contracts.agents import (
    CHAT,
    RUN_STEPS,
    ChatReply,
    Run,
    RunStatus,
    RunStep,
    RunSteps,
    StepKind,
    step_subject,
)
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import OneError
from shared.runtime.client import BusClient

FEED_LIMIT = 10_000
"""Live steps a slow client may fall behind by; past it they are dropped and read from the store instead."""
PAGE = 500
TERMINAL = (StepKind.RUN_FINISHED, StepKind.RUN_ERROR)

OPEN_STREAMS = Gauge("one_gateway_agui_streams", "AG-UI run streams (SSE) open at this gateway replica")

AGUI_DOC = {
    "description": "Without streaming, the finished run as JSON. Streamed (`Accept: text/event-stream`, or "
    "`stream: true`; always for `/v1/runs/{id}/events`): AG-UI events, one SSE message each (`data` an AG-UI "
    "event as JSON, `id` the run step it comes from: resume with `Last-Event-ID` or `after`).",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}

router = APIRouter(prefix="/v1")


class StepFeed:
    """The live steps of a subject, queued until the stream reads them."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(FEED_LIMIT)
        self.subscription: Subscription | None = None

    @classmethod
    async def open(cls, bus: BusClient, subject: str) -> "StepFeed":
        feed = cls()
        feed.subscription = await bus.nc.subscribe(subject, cb=feed._received)
        return feed

    async def _received(self, msg: Msg) -> None:
        try:
            self.queue.put_nowait(msg.data)
        except asyncio.QueueFull:
            pass  # the stream reads the store when it sees the gap

    async def close(self) -> None:
        if self.subscription is not None:
            subscription, self.subscription = self.subscription, None
            await subscription.unsubscribe()


async def chat_stream(request: Request, bus: BusClient, caller: AuthContext, payload: dict[str, Any]) -> EventStream:
    """Start the run (`agents.chat` without waiting) and stream it; refused before it starts, a problem response."""
    feed = await StepFeed.open(bus, step_subject(caller.org_id, "*"))
    try:
        reply: ChatReply = await bus.request(CHAT, {**payload, "wait": False}, caller)
    except BaseException:
        await feed.close()
        raise
    return EventStream(_events(request, bus, caller, reply.run, feed, after=0, stored=None))


@router.get("/runs/{id}/events", status_code=200, response_class=EventStream, responses={200: AGUI_DOC, **READ},
            tags=["runs"])
async def run_events(
    request: Request, id: UUID, caller: Caller, bus: Bus,
    after: Annotated[int, Query(ge=0, description="Resume after this step (`seq`, the SSE `id`).")] = 0,
    last_event_id: Annotated[int | None, Header(ge=0, description="The last `id` seen (wins over `after`).")] = None,
) -> EventStream:
    """Follow a run of the org as AG-UI events: its stored steps, then the live ones until it ends."""
    after = last_event_id if last_event_id is not None else after
    feed = await StepFeed.open(bus, step_subject(caller.org_id, id))
    try:
        first: RunSteps = await bus.request(RUN_STEPS, {"run_id": id, "after_seq": after, "limit": PAGE}, caller)
    except BaseException:
        await feed.close()
        raise
    return EventStream(_events(request, bus, caller, first.run, feed, after=after, stored=first.steps))


async def _events(request: Request, bus: BusClient, caller: AuthContext, run: Run, feed: StepFeed, *, after: int,
                  stored: list[RunStep] | None) -> AsyncIterator[bytes]:
    """The stream's body: stored steps after `after`, then live ones, as AG-UI events, until the run ends."""
    OPEN_STREAMS.inc()
    events = RunEvents(run, started=after > 0)
    try:
        async for item in follow(bus, caller, run, feed, after=after, stored=stored):
            if item is None:
                yield HEARTBEAT
                continue
            chunks = events.end_of(item) if isinstance(item, Run) else \
                events.delta(item) if item.kind == StepKind.TEXT_DELTA else events.step(item)
            for chunk in chunks:
                yield chunk
    except OneError as error:
        problem = one_error_response(request, error).body
        yield f"event: problem\ndata: {bytes(problem).decode()}\n\n".encode()
    finally:
        await feed.close()
        OPEN_STREAMS.dec()


StepReader = Callable[[int, int], Awaitable[RunSteps]]
"""Reads a page of the run's stored steps: (after seq, limit) -> the run and its steps."""


async def follow(bus: BusClient, caller: AuthContext, run: Run, feed: StepFeed, *, after: int,
                 stored: list[RunStep] | None, read: StepReader | None = None) -> AsyncIterator[RunStep | Run | None]:
    """A run's steps after `after`, stored then live, in `seq` order with no gap and no repeat, until its terminal
    step. A live text delta comes only when every delta of its completion came live (else its stored `text` step
    says it whole); None every `HEARTBEAT_SECONDS` without a step; the run itself (as read) when it ended without a
    terminal step this stream could read. `read` reads stored steps (default: `agents.run.steps` as the caller)."""
    read = read or _steps_reader(bus, caller, run.id)
    last, live = after, set[int]()
    if stored is None or len(stored) == PAGE:  # a chat's run has stored nothing yet that it knows of; a long run
        stored = (stored or []) + await _stored(read, stored[-1].seq if stored else last)
    for step in stored:
        last = step.seq
        yield step
        if step.kind in TERMINAL:
            return
    while True:
        try:
            raw = await asyncio.wait_for(feed.queue.get(), HEARTBEAT_SECONDS)
        except TimeoutError:
            yield None
            raw = None
        step = RunStep.model_validate_json(raw) if raw is not None else None
        if step is not None and step.run_id != run.id:
            continue  # another run of the org (a streamed chat listens to all of them)
        if step is not None and step.kind == StepKind.TEXT_DELTA:
            if step.seq == last + 1 and step.seq - 1 in live:  # every delta of this completion came live
                yield step
            continue
        if step is not None:
            live.add(step.seq)
            if step.seq <= last:
                continue
        missed = [] if step is not None and step.seq == last + 1 else await _stored(read, last)
        for each in [*missed, *([step] if step is not None and not missed else [])]:
            if each.seq <= last:
                continue
            last = each.seq
            yield each
            if each.kind in TERMINAL:
                return
        if step is None and not missed:
            current = (await read(last, 1)).run
            if current.status != RunStatus.RUNNING:  # ended without a terminal step this stream could read
                yield current
                return


def _steps_reader(bus: BusClient, caller: AuthContext, run_id: UUID) -> StepReader:
    async def read(after: int, limit: int) -> RunSteps:
        return await bus.request(RUN_STEPS, {"run_id": run_id, "after_seq": after, "limit": limit}, caller)
    return read


async def _stored(read: StepReader, after: int) -> list[RunStep]:
    """Every stored step of the run after `after`, page by page."""
    steps: list[RunStep] = []
    while True:
        page = await read(after, PAGE)
        steps += page.steps
        if len(page.steps) < PAGE:
            return steps
        after = page.steps[-1].seq
