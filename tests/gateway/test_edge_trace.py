"""One trace from an HTTP request to the SQL it caused: HTTP SERVER span -> bus send -> handler -> SQL.

With the caller's W3C `traceparent`, the server span is its child; without one, the server span
is the root. Every link is checked by parent span id, not only by trace id.
"""

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.contracts.graph import THING_GET
from tests.gateway.conftest import Caller

CALLER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7


def the_trace(spans: InMemorySpanExporter, request_id: str) -> tuple[ReadableSpan, dict[int, ReadableSpan]]:
    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.kind == SpanKind.SERVER and (s.attributes or {}).get("one.request_id") == request_id)
    return server, {s.context.span_id: s for s in finished if s.context.trace_id == server.context.trace_id}


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def assert_http_to_sql(server: ReadableSpan, by_id: dict[int, ReadableSpan]) -> None:
    assert server.name == "GET /v1/things/{id}"
    assert server.attributes["http.route"] == "/v1/things/{id}" and server.attributes["http.response.status_code"] == 200
    send = next(s for s in by_id.values() if s.name == f"{THING_GET.subject} send")
    assert send.parent.span_id == server.context.span_id  # the route's bus request, under the HTTP span
    process = next(s for s in by_id.values() if s.kind == SpanKind.CONSUMER and THING_GET.subject in s.name)
    assert process.parent.span_id == send.context.span_id  # the NATS hop
    selects = [s for s in by_id.values() if s.kind == SpanKind.CLIENT and "SELECT" in s.name.upper()
               and "things" in str(s.attributes)]
    assert selects, sorted(s.name for s in by_id.values())
    for sql in selects:
        chain = ancestors(sql, by_id)
        assert process in chain and server in chain, [s.name for s in chain]


async def test_the_callers_traceparent_is_the_parent_of_the_whole_request(
    alice: Caller, spans: InMemorySpanExporter
) -> None:
    thing = (await alice.call("POST", "/v1/things", {"type": "blog_post", "name": "traced"})).json()
    answered = await alice.http.get(f"/v1/things/{thing['id']}", headers={
        "traceparent": f"00-{CALLER_TRACE:032x}-{CALLER_SPAN:016x}-01", "X-Request-Id": "traced-with-parent"})
    assert answered.status_code == 200
    server, by_id = the_trace(spans, "traced-with-parent")
    assert server.context.trace_id == CALLER_TRACE
    assert server.parent is not None and server.parent.span_id == CALLER_SPAN and server.parent.is_remote
    assert_http_to_sql(server, by_id)


async def test_without_a_traceparent_the_http_span_is_the_root(alice: Caller, spans: InMemorySpanExporter) -> None:
    thing = (await alice.call("POST", "/v1/things", {"type": "blog_post", "name": "rooted"})).json()
    answered = await alice.http.get(f"/v1/things/{thing['id']}", headers={"X-Request-Id": "traced-as-root"})
    assert answered.status_code == 200
    server, by_id = the_trace(spans, "traced-as-root")
    assert server.parent is None
    assert_http_to_sql(server, by_id)
    assert all(s.parent is None or s.parent.span_id in by_id for s in by_id.values())  # no link leaves the trace
