"""The gateway's HTTP metrics, per route template and status, and `/metrics` to scrape them.

`one_http_requests_total{method, route, status}` counts answered requests and
`one_http_request_duration_seconds{method, route, status}` times them (the same buckets as the
services' `one_request_duration_seconds`). `route` is the matched route's template
(`/v1/things/{id}`) or `unmatched`: a caller's path never becomes a label, so callers cannot
grow the series. `/metrics` serves these with every other metric of the process.
"""

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from shared.runtime.metrics import BUCKETS

_LABELS = ("method", "route", "status")
REQUESTS = Counter("one_http_requests_total", "HTTP requests the gateway answered", _LABELS)
DURATION = Histogram("one_http_request_duration_seconds", "Time the gateway took to answer an HTTP request",
                     _LABELS, buckets=BUCKETS)

_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
"""The labelled series, looked up once each: `labels()` costs more than the observation."""


def observe(method: str, route: str, status: int, seconds: float) -> None:
    series = _children.get((method, route, status))
    if series is None:
        labels = (method, route, str(status))
        series = _children[(method, route, status)] = (REQUESTS.labels(*labels), DURATION.labels(*labels))
    series[0].inc()
    series[1].observe(seconds)


async def metrics(request: Request) -> Response:
    """Prometheus' text format; rendered in a thread, off the event loop that serves requests."""
    return Response(await asyncio.to_thread(generate_latest, REGISTRY), media_type=CONTENT_TYPE_LATEST)
