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
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.acp.errors import error_body
from shared.contracts.commerce.idempotency import (
    IDEMPOTENCY_BEGIN,
    IDEMPOTENCY_FINISH,
    IdempotencyBegin,
    IdempotencyClaim,
    IdempotencyConflict,
    IdempotencyFinish,
    IdempotencyInFlight,
    IdempotencyStarted,
    StoredAnswer,
)
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import OneError, Unavailable
from shared.kernel.ids import uuid7

IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_NOT_STORED = frozenset({"content-length", "date", "server", "transfer-encoding", "connection", "request-id"})
"""Headers of an answer that are not replayed: the transport's, and `Request-Id` (a replay echoes its own)."""
PENDING = "acp.idempotency"
"""The scope key under which a request's `Pending` key waits for its route."""
INLINE = ("/acp/checkout_sessions", "/acp/agentic_commerce/delegate_payment")
"""Paths whose routes hand the key to commerce with the work (one round trip, no begin/finish)."""


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


@dataclass(slots=True)
class Pending:
    """A request's key, handed by the route to the commerce message that does the work (`IdempotencyClaim`).

    `settled` once commerce claimed it and stored the answer, sent back a replay, or refused the key: the
    middleware then has nothing left to do but send the answer."""

    endpoint: str
    key: str
    request_hash: str
    lock_id: UUID = field(default_factory=uuid7)
    settled: bool = False

    def claim(self, status: int) -> IdempotencyClaim:
        return IdempotencyClaim(endpoint=self.endpoint, key=self.key, request_hash=self.request_hash,
                                lock_id=self.lock_id, status=status)


def pending(scope: Scope) -> Pending | None:
    """The request's key for a route that hands it on (None: no key, or a route the middleware guards itself)."""
    return scope.get(PENDING)


def key_refused(error: OneError, key: str) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """The ACP answer to a key refused by commerce (422 another body, 409 in flight + Retry-After); None otherwise."""
    if isinstance(error, IdempotencyConflict):
        return acp_error(422, "idempotency_conflict", error.message, headers={IDEMPOTENCY_KEY: key})
    if isinstance(error, IdempotencyInFlight):
        retry = {"Retry-After": str(int(error.details.get("retry_after", 1))), IDEMPOTENCY_KEY: key}
        return acp_error(409, "idempotency_in_flight", error.message, headers=retry)
    return None


class Replayed(Exception):
    """Commerce answered the request's key before: `answer` is sent back instead of the route's."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__("replayed")
        self.answer = answer


async def settled(held: Pending | None, asked: Awaitable[Any]) -> Any:
    """Commerce's result to a request that carried `held`: marks the key settled when commerce stored the answer,
    raises `Replayed` for a stored one; a refused key (conflict, in flight) settles it too."""
    try:
        result = await asked
    except (IdempotencyConflict, IdempotencyInFlight):
        if held is not None:
            held.settled = True
        raise
    if held is not None and result.replay is not None:
        held.settled = True
        raise Replayed(result.replay)
    if held is not None:
        held.settled = result.stored
    return result


def raw_response(answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> Response:
    """A raw (status, headers, body) answer as a Starlette response."""
    status, headers, body = answer
    response = Response(body, status_code=status)
    response.raw_headers = [*[(n, v) for n, v in headers if n.lower() != b"content-length"],
                            (b"content-length", str(len(body)).encode())]
    return response


def replayed(stored: StoredAnswer | IdempotencyStarted) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A stored answer as sent again: its status, headers and body, marked `Idempotent-Replayed: true`."""
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers.items()]
    return stored.status or 200, [*headers, (b"idempotent-replayed", b"true")], (stored.body or "").encode()


class AcpIdempotency:
    def __init__(self, app: ASGIApp, *, prefix: str = "/acp/", inline: tuple[str, ...] = INLINE) -> None:
        self.app = app
        self.prefix = prefix
        self.inline = inline

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
        echo = [(b"idempotency-key", key.encode("latin-1"))]
        if request_id := headers.get("request-id"):
            echo.append((b"request-id", request_id.encode("latin-1")))
        held = Pending(f"POST {scope['path']}", key, request_hash(body))
        if scope["path"].startswith(self.inline):  # the route hands the key to commerce with the work
            scope[PENDING] = held
            answer = await self._run(scope, auth, body, more, held)
            if held.settled:
                await _send(send, *_echoed(answer, echo))
                return
            # not claimed (refused at the edge) or claimed and rolled back with an error: keep it the old way
            if (early := await self._begin(scope, auth, held, echo)) is not None:
                await _send(send, *early)
                return
        else:
            if (early := await self._begin(scope, auth, held, echo)) is not None:
                await _send(send, *early)
                return
            answer = await self._run(scope, auth, body, more, held)
        await self._finish(scope, auth, held, answer)
        await _send(send, *_echoed(answer, echo))

    async def _begin(self, scope: Scope, auth: AuthContext, held: Pending, echo: list[tuple[bytes, bytes]]
                     ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Claim the key (taking back the request's own claim): None to proceed, else the answer to send."""
        begin = IdempotencyBegin(endpoint=held.endpoint, key=held.key, request_hash=held.request_hash,
                                 lock_id=held.lock_id)
        try:
            started = await self._ask(scope, auth, IDEMPOTENCY_BEGIN, begin)
        except Unavailable as error:  # commerce unreachable: nothing ran, nothing is kept
            return acp_error(503, "service_unavailable", error.message, type_="service_unavailable")
        except OneError as error:
            return key_refused(error, held.key) or acp_error(500, "processing_error", "internal error",
                                                         type_="processing_error")
        if started.outcome == "replay":
            status, headers, body = replayed(started)
            return status, [*headers, *echo], body
        held.lock_id = started.lock_id or held.lock_id
        return None

    async def _run(self, scope: Scope, auth: AuthContext, body: bytes, more: Receive, held: Pending
                   ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The app's answer to the buffered body (status, headers, body), kept to be stored before it is sent; if
        the app crashes, the key is released."""
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

        try:
            await self.app(scope, replay_body, keep)
        except BaseException:
            await self._finish(scope, auth, held, (500, [], b""))
            raise
        return answer["status"], answer["headers"], answer["body"]

    async def _finish(self, scope: Scope, auth: AuthContext, held: Pending,
                      answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> None:
        """Store (or, for a 5xx, release) the answer; if commerce cannot be told, the key's lease runs out instead."""
        status, raw_headers, raw_body = answer
        kept = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw_headers
                if name.decode("latin-1").lower() not in _NOT_STORED}
        finish = IdempotencyFinish(endpoint=held.endpoint, key=held.key, lock_id=held.lock_id, status=status,
                                   headers=kept, body=raw_body.decode("utf-8", errors="replace"))
        try:
            await self._ask(scope, auth, IDEMPOTENCY_FINISH, finish)
        except OneError:
            pass

    async def _caller(self, scope: Scope, headers: Headers) -> AuthContext | None:
        key = _api_key(headers)
        if key is None:
            return None
        try:
            _, auth = await scope["app"].state.keys.identify(key.strip())
        except OneError:  # unknown, expired, revoked (or tenancy unreachable): the route answers
            return None
        return auth

    async def _ask(self, scope: Scope, auth: AuthContext, spec: Any, payload: Any) -> Any:
        bus, timeout = _bus(scope)
        return await bus.request(spec, payload, auth, protocol=Protocol.ACP, timeout=timeout)


def _echoed(answer: tuple[int, list[tuple[bytes, bytes]], bytes], echo: list[tuple[bytes, bytes]]
            ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The answer as sent: its own length, and the key (and request id) echoed unless the route already did."""
    status, headers, body = answer
    out = [(name, value) for name, value in headers if name.lower() != b"content-length"]
    present = {name.lower() for name, _ in out}
    return status, [*out, *((name, value) for name, value in echo if name not in present)], body


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
