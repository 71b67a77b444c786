"""The org's events as a Server-Sent Events stream: `GET /v1/events/stream`, the event log's tail over HTTP.

Each event goes out as one SSE message whose `id` is its log position and whose `data` is the
`EventRecord`; a client that reconnects sends the last id it saw (`Last-Event-ID`, as a browser's
`EventSource` does by itself, or `after`) and gets exactly the events after it: positions become
visible in order (see `services.eventlog.service.tail_events`), so none is missed or repeated.
Following is a loop of `event.tail` long-polls, one at a time; a poll that comes back empty sends
a `: heartbeat` comment, so proxies and balancers see traffic at least every `HEARTBEAT_SECONDS`.
When the client goes away, Starlette cancels the response and with it the poll in flight: no
subscription or task outlives the connection (`one_gateway_event_streams` counts the open ones).
The key is verified again before every poll, so a revoked or expired key ends its open streams too.

The first poll is made before the response starts, so a bad filter, key or role is an ordinary
problem response; a failure once streaming is a final `problem` event (the problem body) and the
end of the stream, from which the client resumes. `follow=false` ends the stream once caught up.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.sse import format_sse_event
from prometheus_client import Gauge
from pydantic import Field
from starlette.responses import StreamingResponse

from services.gateway.auth import Caller, KeyVerifier, api_key_header, bearer
from services.gateway.problems import one_error_response
from services.gateway.routes_events import METADATA_PARAM
from services.gateway.routes_graph import READ, Bus, _set
from services.gateway.shapes import derived
from shared.contracts.eventlog import MAX_POSITION, TAIL, EventTail, TailPage
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import OneError
from shared.runtime.client import BusClient

HEARTBEAT_SECONDS = 15.0
"""The longest a stream stays silent: each `event.tail` poll waits this long (the log caps it at its own max)."""
HEARTBEAT = b": heartbeat\n\n"

OPEN_STREAMS = Gauge("one_gateway_event_streams", "Event streams (SSE) open at this gateway replica")

EventStreamQuery = derived(
    EventTail, "EventStreamQuery", drop=("wait",), metadata=METADATA_PARAM,
    follow=(bool, Field(True, description="Keep the stream open for new events; false: end it once caught up.")),
)

STREAM_DOC = {
    "description": "One SSE message per event: `id` is its position (resume with `Last-Event-ID` or `after`), "
    "`data` an `EventRecord` as JSON. `: heartbeat` comments keep an idle stream open; a `problem` event "
    "(a problem body) ends a stream that fails after it started.",
    "content": {"text/event-stream": {"schema": {  # one SSE message, as FastAPI and schemathesis read the schema
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "enum": ["message", "problem"]},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"oneOf": [
                {"$ref": "#/components/schemas/EventRecord"}, {"$ref": "#/components/schemas/Problem"}]}},
        },
    }}},
}


class EventStream(StreamingResponse):
    """`text/event-stream`, unbuffered by proxies. Not FastAPI's `EventSourceResponse`: that one wants the
    route to be the generator, and then a refusal found by the first poll could no longer be a problem response."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


LAST_EVENT_ID = "The last `id` seen: resume after it (wins over `after`; browsers send it on reconnect)."

router = APIRouter(prefix="/v1", tags=["events"])


@router.get("/events/stream", status_code=200, response_class=EventStream, responses={200: STREAM_DOC, **READ})
async def stream_events(
    request: Request,
    query: Annotated[EventStreamQuery, Query()],  # type: ignore[valid-type]
    caller: Caller,
    bus: Bus,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],  # the key `caller` came from
    api_key: Annotated[str | None, Depends(api_key_header)],
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_POSITION, description=LAST_EVENT_ID)] = None,
) -> EventStream:
    """Follow the org's events live, with the tail's filters; resumable by position."""
    filters = _set(query)
    follow = filters.pop("follow", True)
    after = last_event_id if last_event_id is not None else query.after  # type: ignore[attr-defined]
    filters["after"] = after
    first: TailPage = await bus.request(TAIL, {**filters, "wait": 0}, caller)
    key = (credentials.credentials if credentials is not None else api_key or "").strip()
    return EventStream(_events(request, bus, key, caller, filters, first, follow))


async def _events(request: Request, bus: BusClient, key: str, caller: AuthContext, filters: dict[str, Any],
                  page: TailPage, follow: bool) -> AsyncIterator[bytes]:
    """The stream's body: `page`, then the next poll's, until the client leaves (or, not following, caught up).
    The key is verified again before each poll (cached, as every request's is), so revoking it ends the stream."""
    keys: KeyVerifier = request.app.state.keys
    OPEN_STREAMS.inc()
    try:
        while True:
            for event in page.events:
                yield format_sse_event(data_str=event.model_dump_json(), id=str(event.position))
            if not follow and len(page.events) < filters.get("limit", EventTail.model_fields["limit"].default):
                return
            if not page.events:
                yield HEARTBEAT
            wait = HEARTBEAT_SECONDS if follow else 0
            try:
                await keys.verify(key)
                page = await bus.request(TAIL, {**filters, "after": page.cursor, "wait": wait}, caller,
                                         timeout=wait + bus.timeout)
            except OneError as error:
                problem = one_error_response(request, error).body
                yield format_sse_event(event="problem", data_str=bytes(problem).decode())
                return
    finally:
        OPEN_STREAMS.dec()
