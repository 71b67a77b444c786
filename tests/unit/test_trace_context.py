"""Trace context in NATS headers: what the client injects, the service joins."""

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from shared.tracing import _remote_parent, consume_span, inject_trace

TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331


def span(sampled: bool, state: TraceState | None = None) -> NonRecordingSpan:
    return NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(int(sampled)), state))


def test_injected_traceparent_is_w3c_and_parses_back() -> None:
    headers: dict[str, str] = {}
    inject_trace(headers, span(sampled=True))
    assert headers == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    parent = _remote_parent(headers)
    assert (parent.trace_id, parent.span_id, parent.trace_flags.sampled, parent.is_remote) == (TRACE_ID, SPAN_ID, True, True)


def test_tracestate_travels_and_is_read_by_the_full_propagator() -> None:
    headers: dict[str, str] = {}
    inject_trace(headers, span(sampled=False, state=TraceState([("vendor", "x")])))
    assert headers["tracestate"] == "vendor=x"
    parent = _remote_parent(headers)
    assert parent.trace_id == TRACE_ID and parent.trace_state.get("vendor") == "x"


def test_garbage_traceparent_is_ignored_not_raised() -> None:
    for value in ("", "00-zz", "00-" + "g" * 32 + "-" + "1" * 16 + "-01", "00-" + "0" * 32 + "-" + "1" * 16 + "-01"):
        assert _remote_parent({"traceparent": value}) is None


def test_an_unsampled_sender_is_joined_without_a_span_of_our_own() -> None:
    headers: dict[str, str] = {}
    inject_trace(headers, span(sampled=False))
    with consume_span("one.x.y", headers) as current:
        assert not current.is_recording()
        assert trace.get_current_span().get_span_context().trace_id == TRACE_ID
    assert trace.get_current_span().get_span_context().trace_id != TRACE_ID
