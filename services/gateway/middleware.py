"""The edge around every HTTP request, as one pure ASGI middleware (BaseHTTPMiddleware costs a task per request).

Per request, in order: a request id (`X-Request-Id`, the caller's when it is sane, else a new
one; sent back), the HTTP SERVER span (the trace's root, or the child of the caller's W3C
`traceparent`; current while the route runs, so its bus request continues the trace), the body
limit (a `Content-Length` over `gateway_max_body_bytes` is 413 unread; a chunked body is cut off
when it passes it), then the app. On the way out: the `RateLimit-*` headers of the tightest
window the request was counted in, the metrics per route template and status, and one access log
line (method, path without its query string, status, time, request id, org and key id; never a
key, an `Authorization` header or a body).
"""

import logging
import re
import time
from typing import Any

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import http_metrics
from services.gateway.edge import EdgeState, current
from services.gateway.problems import problem_response
from shared.kernel.ids import uuid7
from shared.runtime.tracing import server_span

access_log = logging.getLogger("one.gateway.access")

_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_DRAIN_FACTOR = 8
"""A chunked body cut off at the limit is read on (and dropped) up to this many times the limit before the 413,
so a client still sending sees the answer instead of a reset connection; past that, the connection closes."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNMATCHED = "unmatched"
"""The route label of a path no route matched: a caller's path never becomes a label."""


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, access_log_enabled: bool = True) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = traceparent = tracestate = None
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value if _SANE_REQUEST_ID.fullmatch(value) else None
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"tracestate":
                tracestate = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        state = EdgeState(request_id.decode() if request_id else str(uuid7()))
        response = _Response(state, scope)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        with server_span(method, traceparent, tracestate, {"http.request.method": method,
                                                                   "url.path": scope["path"]}) as span:
            token = current.set(state)
            try:
                if length is not None and length > self.max_body_bytes:
                    response.replace(self._too_large(scope, length))
                    await response.send_replacement(send)
                elif chunked and length is None:
                    await self.app(scope, self._bounded(receive, response), response.wrap(send))
                else:
                    await self.app(scope, receive, response.wrap(send))
            except Exception:
                response.status = response.status or 500
                raise
            finally:
                current.reset(token)
                route = scope.get("route")
                template = getattr(route, "path", None) or _UNMATCHED
                if span.is_recording():
                    span.update_name(f"{method} {template}" if route is not None else method)
                    span.set_attribute("http.route", template)
                    span.set_attribute("http.response.status_code", response.status)
                    span.set_attribute("one.request_id", state.request_id)
                    if state.org_id is not None:
                        span.set_attribute("one.org_id", str(state.org_id))
                seconds = time.perf_counter() - started
                http_metrics.observe(method, template, response.status, seconds)
                if self.access_log_enabled and access_log.isEnabledFor(logging.INFO):
                    access_log.info("%s %s %d %.1fms request_id=%s org=%s key=%s", method, scope["path"],
                                    response.status, seconds * 1000, state.request_id, state.org_id or "-",
                                    state.key_id or "-")

    def _too_large(self, scope: Scope, length: int | None) -> Response:
        size = f"of {length:,} bytes " if length is not None else ""
        return problem_response(
            Request(scope), 413, "payload_too_large",
            f"the request body {size}is larger than the {self.max_body_bytes:,} bytes this gateway accepts",
            {"max_bytes": self.max_body_bytes},
        )

    def _bounded(self, receive: Receive, response: "_Response") -> Receive:
        """A chunked body passed on while within the limit; past it, the app sees a disconnect and the caller 413."""
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    response.replace(self._too_large(response.scope, None), unread=receive if message.get(
                        "more_body") else None, drain_limit=_DRAIN_FACTOR * self.max_body_bytes)
                    return {"type": "http.disconnect"}
            return message

        return bounded


class _Response:
    """What the app sends, with the edge's headers added; or, once `replace`d, a problem of the edge's own instead."""

    __slots__ = ("state", "scope", "status", "_replacement", "_replaced", "_unread", "_drain_limit")

    def __init__(self, state: EdgeState, scope: Scope) -> None:
        self.state = state
        self.scope = scope
        self.status = 0
        self._replacement: Response | None = None
        self._replaced = False
        self._unread: Receive | None = None
        self._drain_limit = 0

    def replace(self, problem: Response, unread: Receive | None = None, drain_limit: int = 0) -> None:
        """Answer `problem` instead of the app; `unread`: the rest of a body to drop first (up to `drain_limit`)."""
        self._replacement = problem
        self._unread, self._drain_limit = unread, drain_limit

    def wrap(self, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if self._replaced:
                return  # the app's own answer to a body cut short: the caller already has the 413
            if message["type"] == "http.response.start":
                if self._replacement is not None:
                    await self.send_replacement(send)
                    return
                message = self._stamped(message)
            await send(message)

        return sending

    async def send_replacement(self, send: Send) -> None:
        self._replaced = True
        problem = self._replacement
        assert problem is not None
        dropped = 0
        while self._unread is not None and dropped <= self._drain_limit:
            message = await self._unread()
            dropped += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        start = {"type": "http.response.start", "status": problem.status_code,
                 "headers": [*problem.raw_headers, (b"connection", b"close")]}
        await send(self._stamped(start))
        await send({"type": "http.response.body", "body": problem.body})

    def _stamped(self, message: Message) -> Message:
        self.status = message["status"]
        headers: list[Any] = list(message.get("headers", ()))
        headers.append((b"x-request-id", self.state.request_id.encode()))
        if self.state.allowance is not None:
            headers += self.state.allowance.headers()
        message["headers"] = headers
        return message
