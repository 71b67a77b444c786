"""One trace follows a request: caller -> NATS hop -> handler -> SQL, with correct parent links."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient
from tests.probe.app import NOTE_CREATE

pytestmark = pytest.mark.usefixtures("services")


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span.name)
    return chain


async def test_one_trace_covers_caller_nats_handler_and_sql(
    bus: BusClient, org: AuthContext, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    with trace.get_tracer("tests").start_as_current_span("caller") as caller:
        await bus.request(NOTE_CREATE, {"body": "traced"}, org)
    trace_id = caller.get_span_context().trace_id
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in mine}

    send = next(s for s in mine if s.name == f"{NOTE_CREATE.subject} send")
    process = next(s for s in mine if s.kind == SpanKind.CONSUMER and NOTE_CREATE.subject in s.name)
    inserts = [s for s in mine if s.kind == SpanKind.CLIENT and "INSERT" in s.name.upper() and "notes" in str(s.attributes)]
    assert inserts, [s.name for s in mine]

    assert send.parent.span_id == caller.get_span_context().span_id
    assert ancestors(process, by_id)[0] == send.name  # the NATS hop: process is the child of send
    for sql in inserts:
        chain = ancestors(sql, by_id)
        assert process.name in chain and "caller" in chain, chain
    assert all(s.context.trace_id == trace_id for s in (send, process, *inserts))
