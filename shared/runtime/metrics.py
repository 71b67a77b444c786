"""Prometheus metrics of a process: every request a service answers, and the counters it keeps.

`one_request_duration_seconds{service, type, outcome}` is a histogram of the handler's time
per request (decode to encoded reply); `outcome` is `ok` or the reply's error code, so its
`_count` is the rate of each answer. Requests are recorded into plain dicts (0.17 µs a
request, measured) rather than a `prometheus_client` histogram (`labels().observe`, with its
lock: 1.26 µs) on a path whose whole server side is worth ~60 µs (`tenancy.verify_key.rate`);
the histogram is built from them when scraped, in the server's thread (the event loop's
thread only ever adds to them). `type` is a message type the service handles, or `unknown`:
the label never takes a caller's string, so a caller cannot grow the series.

`metrics_served` exposes these and every `prometheus_client` metric of the process (the event
log's ingest counters, the mailer's outcomes) on `ONE_METRICS_PORT`; 0 serves nothing.
"""

from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from shared.kernel.settings import Settings

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds in seconds: a cached verify answers in well under a millisecond, an embedding in seconds."""
UNKNOWN_TYPE = "unknown"

_series: dict[tuple[str, str, str], list] = {}
"""(service, type, outcome) -> [sum of seconds, count per bucket (the last: above every bound)]."""


def observe(service: str, message_type: str, outcome: str, seconds: float) -> None:
    """Record one answered request (called by `shared.runtime.handlers` for every request)."""
    series = _series.get((service, message_type, outcome))
    if series is None:
        series = _series[(service, message_type, outcome)] = [0.0, [0] * (len(BUCKETS) + 1)]
    series[0] += seconds
    series[1][bisect_left(BUCKETS, seconds)] += 1


class _Requests(Collector):
    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily("one_request_duration_seconds", "Time a service took to answer a request",
                                       labels=["service", "type", "outcome"])
        for labels, (total, per_bucket) in list(_series.items()):  # one C call: a consistent set of keys
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), per_bucket, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            family.add_metric(list(labels), buckets, total)
        yield family


REGISTRY.register(_Requests())


@contextmanager
def metrics_served(settings: Settings) -> Iterator[int | None]:
    """`/metrics` served from a thread of this process while inside; the port, or None when it is 0."""
    if not settings.metrics_port:
        yield None
        return
    server, thread = start_http_server(settings.metrics_port, settings.metrics_host)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
