"""Trace context in NATS headers: what the client injects, the service joins."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from shared.runtime import tracing
from shared.runtime.recorded_span import RecordedSpan
from shared.runtime.tracing import _remote_parent, client_span, consume_span, inject_trace

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


class TestClientSpan:
    """`client_span` must decide exactly as the SDK would, only cheaper when the span is dropped."""

    @pytest.fixture
    def provider(self, monkeypatch: pytest.MonkeyPatch) -> TracerProvider:
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.25)), id_generator=tracing._ids)
        monkeypatch.setattr(tracing, "_provider", provider)
        monkeypatch.setattr(tracing, "_client_tracer", provider.get_tracer("one.client"))
        return provider

    def test_roots_are_sampled_at_the_configured_ratio_with_the_trace_id_decided_on(self, provider: TracerProvider) -> None:
        spans = [client_span("x send", {}) for _ in range(4000)]
        sampled = [s for s in spans if s.get_span_context().trace_flags.sampled]
        assert 0.21 < len(sampled) / len(spans) < 0.29
        bound = TraceIdRatioBased(0.25).bound
        for s in spans:
            trace_id = s.get_span_context().trace_id
            assert s.is_recording() == s.get_span_context().trace_flags.sampled == ((trace_id & 0xFFFFFFFFFFFFFFFF) < bound)
        assert len({s.get_span_context().trace_id for s in spans}) == len(spans)

    def test_a_child_follows_its_parents_decision(self, provider: TracerProvider) -> None:
        for sampled in (False, True):
            with trace.use_span(span(sampled)):
                child = client_span("x send", {})
            context = child.get_span_context()
            assert (context.trace_id, context.trace_flags.sampled, child.is_recording()) == (TRACE_ID, sampled, sampled)
            assert context.span_id != SPAN_ID


class TestOutgoingTrace:
    """`outgoing_trace`: the headers of a request and its span only when sampled, decided as the SDK would."""

    @pytest.fixture(params=["built by setup_tracing", "any other sampler"])
    def provider(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> TracerProvider:
        root = TraceIdRatioBased(0.25)
        provider = TracerProvider(sampler=ParentBased(root), id_generator=tracing._ids)
        monkeypatch.setattr(tracing, "_provider", provider)
        monkeypatch.setattr(tracing, "_client_tracer", provider.get_tracer("one.client"))
        known = (provider.sampler, root.bound) if request.param == "built by setup_tracing" else None
        monkeypatch.setattr(tracing, "_ratio_sampler", known)
        return provider

    def test_roots_are_sampled_by_the_ratio_rule_and_only_sampled_ones_get_a_span(self, provider: TracerProvider) -> None:
        bound = TraceIdRatioBased(0.25).bound
        outcomes = [tracing.outgoing_trace("x send", lambda: {"a": "b"}) for _ in range(4000)]
        for span, headers in outcomes:
            parent = _remote_parent(headers)
            assert parent is not None and set(headers) == {"traceparent"}
            assert parent.trace_flags.sampled == ((parent.trace_id & 0xFFFFFFFFFFFFFFFF) < bound) == (span is not None)
            if span is not None:
                assert span.is_recording() and span.get_span_context().trace_id == parent.trace_id
                assert span.get_span_context().span_id == parent.span_id and span.attributes["a"] == "b"
        assert 0.21 < sum(span is not None for span, _ in outcomes) / len(outcomes) < 0.29

    def test_an_unsampled_parent_is_continued_without_a_span(self, provider: TracerProvider) -> None:
        with trace.use_span(span(sampled=False, state=TraceState([("vendor", "x")]))):
            child, headers = tracing.outgoing_trace("x send", dict)
        parent = _remote_parent(headers)
        assert child is None and headers["tracestate"] == "vendor=x"
        assert (parent.trace_id, parent.trace_flags.sampled) == (TRACE_ID, False) and parent.span_id != SPAN_ID

    def test_a_sampled_parent_gets_a_recording_child(self, provider: TracerProvider) -> None:
        with trace.use_span(span(sampled=True)):
            child, headers = tracing.outgoing_trace("x send", dict)
        assert child is not None and child.is_recording()
        assert _remote_parent(headers).trace_id == TRACE_ID == child.get_span_context().trace_id

    def test_without_tracing_set_up_nothing_travels(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(tracing, "_provider", None)
        monkeypatch.setattr(tracing, "_client_tracer", trace.NoOpTracer())
        assert tracing.outgoing_trace("x send", dict) == (None, {})


class TestConsumeSpan:
    """A sampled sender gets a CONSUMER span of ours, child of its span, ended with the block:
    a `RecordedSpan` under the sampler `setup_tracing` builds, the SDK's span under any other."""

    @pytest.fixture(params=["built by setup_tracing", "any other sampler"])
    def exporter(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
        exporter = InMemorySpanExporter()
        root = TraceIdRatioBased(0.0)
        provider = TracerProvider(sampler=ParentBased(root))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        monkeypatch.setattr(tracing, "_provider", provider)
        monkeypatch.setattr(tracing, "_consumer_tracer", provider.get_tracer("one.handlers"))
        known = (provider.sampler, root.bound) if request.param == "built by setup_tracing" else None
        monkeypatch.setattr(tracing, "_ratio_sampler", known)
        return exporter

    def test_a_sampled_sender_gets_a_child_span_that_ends_with_the_block(self, exporter: InMemorySpanExporter) -> None:
        headers: dict[str, str] = {}
        inject_trace(headers, span(sampled=True))
        with consume_span("one.x.y", headers) as current:
            assert current.is_recording() and trace.get_current_span() is current
        [ended] = exporter.get_finished_spans()
        assert (ended.name, ended.kind, ended.parent.span_id, ended.context.trace_id) == (
            "one.x.y process", trace.SpanKind.CONSUMER, SPAN_ID, TRACE_ID
        )
        assert ended.attributes["messaging.destination.name"] == "one.x.y" and ended.status.is_ok
        assert ended.instrumentation_scope.name == "one.handlers" and ended.resource is tracing._provider.resource
        assert trace.get_current_span() is not current

    def test_a_span_started_inside_is_its_child_in_the_same_trace(self, exporter: InMemorySpanExporter) -> None:
        headers: dict[str, str] = {}
        inject_trace(headers, span(sampled=True))
        with consume_span("one.x.y", headers) as current, tracing._provider.get_tracer("tests").start_as_current_span("SELECT"):
            pass
        inner, outer = exporter.get_finished_spans()
        assert inner.parent.span_id == outer.context.span_id == current.get_span_context().span_id
        assert inner.context.trace_id == outer.context.trace_id == TRACE_ID

    def test_an_error_escaping_the_block_is_recorded_on_the_span(self, exporter: InMemorySpanExporter) -> None:
        headers: dict[str, str] = {}
        inject_trace(headers, span(sampled=True))
        with pytest.raises(LookupError), consume_span("one.x.y", headers):
            raise LookupError("gone")
        [ended] = exporter.get_finished_spans()
        assert ended.status.status_code == trace.StatusCode.ERROR and "LookupError: gone" in ended.status.description
        [event] = ended.events
        assert event.name == "exception" and event.attributes["exception.type"] == "LookupError"
        assert event.attributes["exception.message"] == "gone" and "raise LookupError" in event.attributes["exception.stacktrace"]

    def test_an_unsampled_sender_leaves_nothing_to_export(self, exporter: InMemorySpanExporter) -> None:
        headers: dict[str, str] = {}
        inject_trace(headers, span(sampled=False))
        with consume_span("one.x.y", headers):
            pass
        assert exporter.get_finished_spans() == ()


class TestRecordedSpan:
    """What `RecordedSpan` must do as any span would, to the processors and to whoever holds it."""

    @pytest.fixture
    def exporter(self) -> InMemorySpanExporter:
        return InMemorySpanExporter()

    def recorded(self, exporter: InMemorySpanExporter) -> RecordedSpan:
        context = SpanContext(TRACE_ID, 0x1234, False, TraceFlags(1))
        return RecordedSpan("x send", context, None, trace.SpanKind.CLIENT, {"a": "b"}, InstrumentationScope("one.client"),
                            Resource.create({"service.name": "t"}), SimpleSpanProcessor(exporter))

    def test_it_is_exported_once_when_it_ends_and_changes_after_are_ignored(self, exporter: InMemorySpanExporter) -> None:
        recorded = self.recorded(exporter)
        recorded.set_attributes({"c": 1})
        recorded.update_name("x sent")
        assert exporter.get_finished_spans() == ()
        recorded.end()
        recorded.end()
        recorded.set_attribute("late", True)
        recorded.set_status(trace.StatusCode.ERROR, "late")
        [ended] = exporter.get_finished_spans()
        assert ended is recorded and not recorded.is_recording()
        assert (ended.name, dict(ended.attributes), ended.status.status_code) == ("x sent", {"a": "b", "c": 1}, trace.StatusCode.UNSET)
        assert ended.start_time <= ended.end_time and ended.resource.attributes["service.name"] == "t"

    def test_its_exception_event_has_the_sdk_spans_shape(self, exporter: InMemorySpanExporter) -> None:
        sdk_span = TracerProvider().get_tracer("t").start_span("x")
        error = KeyError("k")
        sdk_span.record_exception(error, {"extra": 1})
        recorded = self.recorded(exporter)
        recorded.record_exception(error, {"extra": 1})
        recorded.add_link(span(sampled=True).get_span_context(), {"why": "x"})
        [ours], [theirs] = recorded.events, sdk_span.events
        assert (ours.name, dict(ours.attributes)) == (theirs.name, dict(theirs.attributes))
        assert [link.context.span_id for link in recorded.links] == [SPAN_ID]


def test_our_traceparent_skips_the_header_scrub_but_is_otherwise_a_plain_string() -> None:
    from nats.aio.client import _HEADER_VALUE_NEWLINES

    plain = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    ours = tracing._Traceparent(plain)
    assert ours.strip().translate(_HEADER_VALUE_NEWLINES) is ours == plain  # what nats-py does to every header value
    assert ours.translate({ord("a"): "X"}) == plain.translate({ord("a"): "X"})
    assert ours.strip("0") == plain.strip("0") and ours.encode() == plain.encode()
