"""ACP idempotency at the edge: every ACP `POST` under `/acp/` runs at most once per (caller, path, key).

A pure ASGI middleware inside `EdgeMiddleware` (so the body limit, request id and trace cover it),
outside the routes and their exception handlers (so it stores exactly the answer the client got,
whatever the route's shape). Per request: no `Idempotency-Key` → 400 `idempotency_key_required`;
else commerce `begin`s the key (`shared/contracts/commerce/idempotency.py`): a replay is sent back
as stored with `Idempotent-Replayed: true`; another body → 422 `idempotency_conflict`; the first
still running → 409 `idempotency_in_flight` with `Retry-After`. A request that proceeds is answered
by the app, its answer stored (`finish`) before it is sent, so a retry right after it sees the
replay; a 5xx (or a crash) releases the key instead. The body hash is over canonical JSON (key
order and whitespace do not make a request "different"). A request without a valid API key is
passed through untouched: the route answers 401, and there is no caller to scope a key to.
Replays are answered here without the route, so they are not counted in the key's rate windows.
"""

import hashlib
import json
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.acp.errors import error_body
from shared.contracts.commerce.idempotency import (
    IDEMPOTENCY_BEGIN,
    IDEMPOTENCY_FINISH,
    IdempotencyBegin,
    IdempotencyConflict,
    IdempotencyFinish,
    IdempotencyInFlight,
    IdempotencyStarted,
)
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import OneError, Unavailable

IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_NOT_STORED = frozenset({"content-length", "date", "server", "transfer-encoding", "connection", "request-id"})
"""Headers of an answer that are not replayed: the transport's, and `Request-Id` (a replay echoes its own)."""


def request_hash(body: bytes) -> str:
    """SHA-256 of the body as canonical JSON (sorted keys, no spaces); of the bytes when it is not JSON."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def acp_error(status: int, code: str, message: str, *, type_: str = "invalid_request",
              headers: dict[str, str] | None = None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An ACP `Error` body (type, code, message) as a raw response."""
    body = json.dumps(error_body(type_, code, message)).encode()
    raw = [(b"content-type", b"application/json")]
    raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
    return status, raw, body


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _api_key(headers: Headers) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


class AcpIdempotency:
    def __init__(self, app: ASGIApp, *, prefix: str = "/acp/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        auth = await self._caller(scope, headers)
        if auth is None:
            await self.app(scope, receive, send)
            return
        key = headers.get(IDEMPOTENCY_KEY)
        if not key:
            await _send(send, *acp_error(400, "idempotency_key_required", "Idempotency-Key header is required"))
            return
        if len(key) > 255:
            await _send(send, *acp_error(400, "idempotency_key_invalid", "Idempotency-Key is at most 255 characters"))
            return
        body, more = await _read_body(receive)
        if body is None:  # the client left, or the edge cut the body off (its 413 replaces this): nothing ran or is kept
            await _send(send, *acp_error(400, "invalid_request", "the request body was not received whole"))
            return
        endpoint = f"POST {scope['path']}"
        echo = [(b"idempotency-key", key.encode("latin-1"))]
        if request_id := headers.get("request-id"):
            echo.append((b"request-id", request_id.encode("latin-1")))
        try:
            started = await self._begin(scope, auth, IdempotencyBegin(endpoint=endpoint, key=key,
                                                                      request_hash=request_hash(body)))
        except IdempotencyConflict as error:
            await _send(send, *acp_error(422, "idempotency_conflict", error.message, headers={IDEMPOTENCY_KEY: key}))
            return
        except IdempotencyInFlight as error:
            retry = {"Retry-After": str(int(error.details.get("retry_after", 1))), IDEMPOTENCY_KEY: key}
            await _send(send, *acp_error(409, "idempotency_in_flight", error.message, headers=retry))
            return
        except Unavailable as error:  # commerce unreachable: nothing ran, nothing is kept
            await _send(send, *acp_error(503, "service_unavailable", error.message, type_="service_unavailable"))
            return
        except OneError:
            await _send(send, *acp_error(500, "processing_error", "internal error", type_="processing_error"))
            return
        if started.outcome == "replay":
            stored = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in started.headers.items()]
            await _send(send, started.status or 200, [*stored, *echo, (b"idempotent-replayed", b"true")],
                        (started.body or "").encode())
            return
        await self._proceed(scope, send, auth, body, more, endpoint, key, started)

    async def _proceed(self, scope: Scope, send: Send, auth: AuthContext, body: bytes, more: Receive, endpoint: str,
                       key: str, started: IdempotencyStarted) -> None:
        """Run the app on the buffered body, keep its answer, store it (or release the key on a 5xx), then send it."""
        answer: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await more()

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        assert started.lock_id is not None
        try:
            await self.app(scope, replay_body, keep)
        except BaseException:
            await self._finish(scope, auth, IdempotencyFinish(endpoint=endpoint, key=key, lock_id=started.lock_id,
                                                              status=500, body=""))
            raise
        status, raw_headers, raw_body = answer["status"], answer["headers"], answer["body"]
        kept = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw_headers
                if name.decode("latin-1").lower() not in _NOT_STORED}
        await self._finish(scope, auth, IdempotencyFinish(
            endpoint=endpoint, key=key, lock_id=started.lock_id, status=status, headers=kept,
            body=raw_body.decode("utf-8", errors="replace")))
        out = [(name, value) for name, value in raw_headers if name.lower() != b"content-length"]
        if not any(name.lower() == b"idempotency-key" for name, _ in out):
            out.append((b"idempotency-key", key.encode("latin-1")))
        await _send(send, status, out, raw_body)

    async def _caller(self, scope: Scope, headers: Headers) -> AuthContext | None:
        key = _api_key(headers)
        if key is None:
            return None
        try:
            _, auth = await scope["app"].state.keys.identify(key.strip())
        except OneError:  # unknown, expired, revoked (or tenancy unreachable): the route answers
            return None
        return auth

    async def _begin(self, scope: Scope, auth: AuthContext, begin: IdempotencyBegin) -> IdempotencyStarted:
        bus, timeout = _bus(scope)
        return await bus.request(IDEMPOTENCY_BEGIN, begin, auth, protocol=Protocol.ACP, timeout=timeout)

    async def _finish(self, scope: Scope, auth: AuthContext, finish: IdempotencyFinish) -> None:
        """Store (or release) the answer; if commerce cannot be told, the key's lease runs out instead."""
        bus, timeout = _bus(scope)
        try:
            await bus.request(IDEMPOTENCY_FINISH, finish, auth, protocol=Protocol.ACP, timeout=timeout)
        except OneError:
            pass


def _bus(scope: Scope) -> tuple[Any, float]:
    """The raw bus client (bookkeeping is not the caller's operation: no rate rule, no permission) and the timeout."""
    state = scope["app"].state
    return getattr(state.bus, "bus", state.bus), state.settings.gateway_request_timeout


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None if a disconnect came first), and `receive` for what comes after it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), receive
