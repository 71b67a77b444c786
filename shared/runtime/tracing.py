"""OpenTelemetry set-up: one tracer provider per process, OTLP when configured.

Head sampling is parent-based with a ratio for new traces, so a sampled request
stays sampled through every service it crosses. Tests pass an in-memory exporter.
"""

import logging
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context, trace
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:  # a bus client (the CLI) imports this module without the SDK (~30 ms, psutil with it): only a
    # process that sets tracing up (`setup_tracing`: the services) loads it; only services have an engine
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.kernel.settings import Settings
    from shared.runtime.recorded_span import RecordedSpan

log = logging.getLogger(__name__)
_provider: "TracerProvider | None" = None
_ratio_sampler: "tuple[ParentBased, int] | None" = None  # the sampler `setup_tracing` built, and its root bound
_consumer_tracer = trace.get_tracer("one.handlers")
_client_tracer = trace.get_tracer("one.client")


class _ReusableIds:
    """The SDK's `RandomIdGenerator` (random ids, never the invalid 0; written out here so that this module does
    not import the SDK), and it lets `client_span` hand the SDK the trace id it already sampled against."""

    preset: int | None = None

    def generate_span_id(self) -> int:
        span_id = random.getrandbits(64)
        while span_id == trace.INVALID_SPAN_ID:
            span_id = random.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        preset, self.preset = self.preset, None
        if preset is not None:
            return preset
        trace_id = random.getrandbits(128)
        while trace_id == trace.INVALID_TRACE_ID:
            trace_id = random.getrandbits(128)
        return trace_id

    def is_trace_id_random(self) -> bool:
        return True


_ids = _ReusableIds()


def setup_tracing(
    service_name: str,
    *,
    exporter: "SpanExporter | None" = None,
    sample_ratio: float | None = None,
    settings: "Settings | None" = None,
) -> "TracerProvider":
    """Install the process-wide tracer provider (once) and attach exporters.

    Exports over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; an explicit
    `exporter` (e.g. `InMemorySpanExporter` in tests) is attached synchronously so
    spans are visible as soon as they end. Calling it again only adds the exporter.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    global _provider, _ratio_sampler, _consumer_tracer, _client_tracer
    if settings is None:
        from shared.kernel.settings import get_settings

        settings = get_settings()
    if _provider is None:
        ratio = settings.trace_sample_ratio if sample_ratio is None else sample_ratio
        root = TraceIdRatioBased(ratio)
        sampler = ParentBased(root)
        _provider = TracerProvider(
            resource=Resource.create({"service.name": settings.otel_service_name or service_name}),
            sampler=sampler,
            id_generator=_ids,
        )
        _ratio_sampler = (sampler, root.bound)
        # Straight from our provider rather than through the API's proxies, which look it up on every span.
        _consumer_tracer = _provider.get_tracer("one.handlers")
        _client_tracer = _provider.get_tracer("one.client")
        if settings.otel_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otel_endpoint.rstrip("/") + "/v1/traces"
            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(_provider)
    if exporter is not None:
        _provider.add_span_processor(SimpleSpanProcessor(exporter))
    return _provider


def tracer_provider() -> "TracerProvider | None":
    return _provider


_POOL_EVENTS = frozenset({"connect", "close", "checkin", "checkout"})


def instrument_engine(engine: "AsyncEngine") -> None:
    """SQL spans for every statement on this engine, as children of the current span.

    `SQLAlchemyInstrumentor` is a process-wide singleton that wraps `create_engine`
    and misses engines of modules imported earlier, so each engine is traced here.
    """
    from opentelemetry import metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    class SampledEngineTracer(EngineTracer):
        """A statement under a request that is not sampled gets no span at all: the instrumentation's attributes
        and operation name were ~5 % of a service's CPU per statement, for a span nobody would see. The pool's
        checkout and checkin are not counted: the process has no OpenTelemetry meter to report
        `db.client.connections.usage` to, and counting cost ~50 µs of CPU per transaction."""

        def _register_event_listener(self, target: Any, identifier: str, func: Any, *args: Any, **kwargs: Any) -> None:
            if identifier not in _POOL_EVENTS:
                super()._register_event_listener(target, identifier, func, *args, **kwargs)

        def _before_cur_exec(self, conn: Any, cursor: Any, statement: Any, params: Any, context: Any,
                             executemany: bool) -> tuple[Any, Any]:
            parent = trace.get_current_span().get_span_context()
            if parent.is_valid and not parent.trace_flags.sampled:
                return statement, params
            return super()._before_cur_exec(conn, cursor, statement, params, context, executemany)

    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", tracer_provider=_provider)
    usage = metrics.get_meter("opentelemetry.instrumentation.sqlalchemy").create_up_down_counter(
        "db.client.connections.usage", unit="connections"
    )  # required by the constructor; never added to (no pool events)
    SampledEngineTracer(tracer, engine.sync_engine, usage)


_W3C = TraceContextTextMapPropagator()


def client_span(name: str, attributes: dict[str, str]) -> Span:
    """The span of one outgoing request, with the SDK's decision but not its cost when dropped.

    Most requests are not sampled, and building a span only to drop it was a
    quarter of the client's CPU per request. So the sampler is asked first (for
    a root, about a trace id we generate; for a child, the parent decides), and
    only a sampled request gets a real span, with that same trace id.
    """
    parent = trace.get_current_span().get_span_context()
    if parent.is_valid:
        if not parent.trace_flags.sampled:
            return NonRecordingSpan(SpanContext(parent.trace_id, _ids.generate_span_id(), False, parent.trace_flags, parent.trace_state))
    elif _provider is not None:
        trace_id = _ids.generate_trace_id()
        sampling = _provider.sampler.should_sample(None, trace_id, name, SpanKind.CLIENT, attributes)
        if not sampling.decision.is_sampled():
            return NonRecordingSpan(SpanContext(trace_id, _ids.generate_span_id(), False, TraceFlags(0), sampling.trace_state))
        _ids.preset = trace_id
    return _client_tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def outgoing_trace(name: str, attributes: Callable[[], dict[str, str]]) -> tuple[Span | None, dict[str, str]]:
    """The NATS headers for one outgoing request, and its span if it is sampled (else None).

    The unsampled case (most requests) is only a `traceparent` string: no span
    object, no attributes (`attributes` is called for sampled spans only). Where
    the sampler is the one `setup_tracing` built, its rule is applied here without
    the calls around it (a sampled parent's child is sampled; a root is sampled when
    `trace_id & TRACE_ID_LIMIT < bound`) and a sampled span is a `RecordedSpan`;
    any other sampler is asked as the SDK would.
    """
    parent = trace.get_current_span().get_span_context()
    if parent.is_valid:
        if not parent.trace_flags.sampled:
            span_id = _ids.generate_span_id()
            if parent.trace_state:
                child = SpanContext(parent.trace_id, span_id, False, parent.trace_flags, parent.trace_state)
                return None, _headers_for(NonRecordingSpan(child))
            return None, {"traceparent": _Traceparent("00-%032x-%016x-%02x" % (parent.trace_id, span_id, parent.trace_flags))}
        if _ratio_bound() is not None:
            span = _recorded(name, SpanKind.CLIENT, parent.trace_id, parent, attributes(), _CLIENT_SCOPE)
            return span, _headers_for(span)
    else:
        bound = _ratio_bound()
        if bound is not None:
            trace_id = _ids.generate_trace_id()
            if trace_id & _TRACE_ID_LIMIT >= bound:
                return None, {"traceparent": _Traceparent("00-%032x-%016x-00" % (trace_id, _ids.generate_span_id()))}
            span = _recorded(name, SpanKind.CLIENT, trace_id, None, attributes(), _CLIENT_SCOPE)
            return span, _headers_for(span)
    span = client_span(name, attributes())
    return (span if span.is_recording() else None), _headers_for(span)


def sql_span(verb: str, database: str, statement: str) -> Span | None:
    """The CLIENT span of a statement run on the driver (`shared.runtime.sql`) under a sampled current span, None
    otherwise: the span SQLAlchemy's instrumentation would give it (`<VERB> <database>`, `db.system`, `db.name`,
    `db.statement`), a `RecordedSpan` where our sampler rules (a sampled parent's child is sampled)."""
    parent = trace.get_current_span().get_span_context()
    if not (parent.is_valid and parent.trace_flags.sampled):
        return None
    name, attributes = f"{verb} {database}", {"db.system": "postgresql", "db.name": database, "db.statement": statement}
    if _ratio_bound() is not None:
        return _recorded(name, SpanKind.CLIENT, parent.trace_id, parent, attributes, _SQL_SCOPE)
    return trace.get_tracer(_SQL_SCOPE.name).start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def _ratio_bound() -> int | None:
    """The root bound of the sampler `setup_tracing` built, if it is still the provider's (else None)."""
    if _provider is not None and _ratio_sampler is not None and _provider.sampler is _ratio_sampler[0]:
        return _ratio_sampler[1]
    return None


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_TRACE_ID_LIMIT = (1 << 64) - 1  # `TraceIdRatioBased.TRACE_ID_LIMIT`: the bits of a trace id its bound is compared to
_CLIENT_SCOPE = InstrumentationScope("one.client")
_CONSUMER_SCOPE = InstrumentationScope("one.handlers")
_SQL_SCOPE = InstrumentationScope("opentelemetry.instrumentation.sqlalchemy")


def _recorded(name: str, kind: SpanKind, trace_id: int, parent: SpanContext | None, attributes: dict[str, str],
              scope: InstrumentationScope) -> "RecordedSpan":
    """A sampled span of ours, in `trace_id`, under `parent` (None for a root)."""
    from shared.runtime.recorded_span import RecordedSpan  # with the SDK: loaded once tracing is set up

    assert _provider is not None
    state = parent.trace_state if parent is not None else None
    context = SpanContext(trace_id, _ids.generate_span_id(), False, _SAMPLED, state)
    return RecordedSpan(name, context, parent, kind, attributes, scope, _provider.resource,
                        _provider._active_span_processor)  # the processors `add_span_processor` registered


_CR_LF = frozenset((ord("\r"), ord("\n")))


class _Traceparent(str):
    """A `traceparent` we formatted: hex digits and dashes, nothing else.

    nats-py scrubs every header value with `strip()` and a `translate()` of CR
    and LF, a per-character table lookup that cost as much as the rest of the
    header; this value has no surrounding space and no CR or LF, so both return
    it as it is (any other use of them works as for any string).
    """

    __slots__ = ()

    def strip(self, chars: str | None = None) -> str:
        return self if chars is None else str.strip(self, chars)

    def translate(self, table: Any) -> str:
        if isinstance(table, dict) and table.keys() <= _CR_LF:
            return self
        return str.translate(self, table)


def _headers_for(span: Span) -> dict[str, str]:
    headers: dict[str, str] = {}
    inject_trace(headers, span)
    return headers


def inject_trace(headers: dict[str, str], span: Span) -> None:
    """Put the W3C `traceparent` (and `tracestate`) for `span` into NATS headers."""
    context = span.get_span_context()
    if context.trace_state:
        _W3C.inject(headers, context=trace.set_span_in_context(span))
    elif context.is_valid:
        headers["traceparent"] = _Traceparent("00-%032x-%016x-%02x" % (context.trace_id, context.span_id, context.trace_flags))


_FLAGS = {"00": TraceFlags(0x00), "01": TraceFlags(0x01)}  # the two flags every traceparent here carries


def _remote_parent(headers: dict[str, str]) -> SpanContext | None:
    """Parse a version-00 `traceparent` directly (the hot path); anything else goes to the propagator."""
    value = headers.get("traceparent")
    if value is None:
        return None
    if len(value) == 55 and value.startswith("00-") and value[35] == value[52] == "-" and "tracestate" not in headers:
        try:
            flags = _FLAGS.get(value[53:])
            if flags is None:
                flags = TraceFlags(int(value[53:], 16))
            parent = SpanContext(int(value[3:35], 16), int(value[36:52], 16), True, flags)
        except ValueError:
            return None
        return parent if parent.is_valid else None
    context = trace.get_current_span(_W3C.extract(headers)).get_span_context()
    return context if context.is_valid else None


class _Joined:
    """Makes a remote, unsampled parent current without creating a span of our own."""

    __slots__ = ("_span", "_token")

    def __init__(self, parent: SpanContext) -> None:
        self._span = NonRecordingSpan(parent)

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, *exc: object) -> None:
        otel_context.detach(self._token)


class _Consumed(_Joined):
    """Makes our own span current and ends it with the block, recording an error that
    escapes it: what `start_as_current_span` does, without its layers of context
    managers (a sampled message pays them all)."""

    __slots__ = ()

    def __init__(self, span: Span) -> None:
        self._span = span

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        otel_context.detach(self._token)
        if exc is not None and self._span.is_recording():
            self._span.record_exception(exc)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self._span.end()


def consume_span(subject: str, headers: dict[str, str] | None) -> AbstractContextManager[Span]:
    """The span a service runs a message under, joined to the sender's trace.

    When the sender's trace is not sampled, no span is created at all: the
    sender's context is made current as it is, so calls made while handling carry
    the same trace id and the same "not sampled" decision, at almost no cost. A
    sampled sender's message gets a `RecordedSpan` (see `outgoing_trace`).
    """
    parent = _remote_parent(headers) if headers else None
    if parent is not None and not parent.trace_flags.sampled:
        return _Joined(parent)
    name = f"{subject} process"
    attributes = {"messaging.system": "nats", "messaging.destination.name": subject, "messaging.operation": "process"}
    if parent is not None and _ratio_bound() is not None:
        return _Consumed(_recorded(name, SpanKind.CONSUMER, parent.trace_id, parent, attributes, _CONSUMER_SCOPE))
    span = _consumer_tracer.start_span(
        name,
        context=trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )
    return _Consumed(span)


_SERVER_SCOPE = InstrumentationScope("one.http")
_server_tracer = trace.get_tracer("one.http")


def server_span(name: str, traceparent: str | None, tracestate: str | None = None,
                attributes: dict[str, str] | None = None) -> AbstractContextManager[Span]:
    """The span an HTTP server runs a request under: the root of the trace, or the caller's `traceparent`'s child.

    The same economy as `consume_span`: a caller's unsampled trace is joined without a span; a new
    trace asks the ratio sampler first and, when it says no, only makes an unsampled context current
    (so the bus requests of the route carry one trace id and the same decision).
    """
    headers = {"traceparent": traceparent} if traceparent else {}
    if tracestate and traceparent:
        headers["tracestate"] = tracestate
    parent = _remote_parent(headers) if headers else None
    if parent is not None and not parent.trace_flags.sampled:
        return _Joined(parent)
    attributes = attributes or {}
    bound = _ratio_bound()
    if bound is not None:
        if parent is not None:
            return _Consumed(_recorded(name, SpanKind.SERVER, parent.trace_id, parent, attributes, _SERVER_SCOPE))
        trace_id = _ids.generate_trace_id()
        if trace_id & _TRACE_ID_LIMIT >= bound:
            return _Joined(SpanContext(trace_id, _ids.generate_span_id(), False, TraceFlags(0)))
        return _Consumed(_recorded(name, SpanKind.SERVER, trace_id, None, attributes, _SERVER_SCOPE))
    tracer = _provider.get_tracer("one.http") if _provider is not None else _server_tracer
    span = tracer.start_span(
        name,
        context=trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None,
        kind=SpanKind.SERVER,
        attributes=attributes,
    )
    return _Consumed(span)


def shutdown_tracing() -> None:
    """Flush pending spans (the batch exporter) before the process exits."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)
