"""ACP 2026-04-17 merchant API: `/acp/checkout_sessions` (create, update, get, complete, cancel), one bus request each.

Every request: the bearer API key (the org is the key's; missing or wrong -> 401), `API-Version`
(required, one of `SUPPORTED_VERSIONS`, else 400 with `supported_versions`), a JSON body checked against
the official JSON Schema bundle (unknown fields refused, `param` names the field), then commerce
answers over `one.proto.acp.checkout.*` (envelopes tagged `acp`). Every answer is checked against the
bundle before it leaves (`CheckoutSession`, `CheckoutSessionWithOrder` once there is an order, `Error`):
a body that does not match is our bug, logged and answered 500 `processing_error`. Errors use ACP's
`Error` shape (errors.py). Idempotency (`Idempotency-Key` on every POST) is the `/acp/` middleware's
(idempotency.py), which runs before these routes.

Each route is a plain `(request, body) -> (status, body)` function (`HANDLERS`), wrapped once by
`_endpoint`, so other edges (a bench's bare app, a future transport) can call the same functions.
The routes are plain Starlette routes, out of the platform's OpenAPI (their contract is ACP's own, and their
errors are ACP's, not problem+json); their cross-tenant attacks are tests/acp/test_checkout_cross_tenant.py.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.acp.errors import error_body, error_response, from_error
from services.gateway.acp.idempotency import Replayed, key_refused, pending, raw_response, replayed, settled
from services.gateway.auth import api_key_header, authenticated, bearer
from shared.contracts.commerce.acp import (
    CHECKOUT_CANCEL,
    CHECKOUT_COMPLETE,
    CHECKOUT_CREATE,
    CHECKOUT_GET,
    CHECKOUT_UPDATE,
)
from shared.contracts.commerce.acp_schema import SUPPORTED_VERSIONS, check, errors
from shared.contracts.commerce.idempotency import answer_text
from shared.kernel.envelope import AuthContext, MessageSpec, Protocol
from shared.kernel.errors import InvalidRequest, OneError

log = logging.getLogger(__name__)
router = APIRouter()
BASE = "/acp"

Handler = Callable[[Request, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]


class _VersionRefused(InvalidRequest):
    code = "unsupported_api_version"


def caller(request: Request) -> AuthContext:
    """The verified caller of this request (set by `_endpoint` before the handler runs)."""
    return request.state.acp_caller


async def _ask(request: Request, spec: MessageSpec[Any, Any], payload: dict[str, Any], status: int = 200
               ) -> dict[str, Any]:
    """Commerce's answer; the request's idempotency key goes along (`status`: what a success is answered with)."""
    held = pending(request.scope)
    if held is not None:
        payload = {**payload, "idempotency": held.claim(status)}
    answer = await settled(held, request.app.state.bus.request(spec, payload, caller(request), protocol=Protocol.ACP))
    return answer.session


async def create_session(request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 201, await _ask(request, CHECKOUT_CREATE, {"request": body}, 201)


async def update_session(request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, await _ask(request, CHECKOUT_UPDATE, {"id": request.path_params["session_id"], "request": body})


async def get_session(request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, await _ask(request, CHECKOUT_GET, {"id": request.path_params["session_id"]})


async def complete_session(request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, await _ask(request, CHECKOUT_COMPLETE, {
        "id": request.path_params["session_id"], "request": body,
        "idempotency_key": request.headers.get("Idempotency-Key")})


async def cancel_session(request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, await _ask(request, CHECKOUT_CANCEL, {"id": request.path_params["session_id"], "request": body})


async def _authenticate(request: Request) -> AuthContext:
    return await authenticated(request, await bearer(request), await api_key_header(request))


def _check_version(request: Request) -> None:
    version = request.headers.get("API-Version")
    if version not in SUPPORTED_VERSIONS:
        said = "API-Version is required" if version is None else f"API-Version {version!r} is not supported"
        raise _VersionRefused(said, {"param": "API-Version", "supported_versions": list(SUPPORTED_VERSIONS)})


async def _json(request: Request, optional: bool) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip() and optional:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("the request body is not JSON", {"acp_code": "invalid_json"}) from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", {"acp_code": "invalid", "param": "$"})
    return body


def _answer(status: int, body: dict[str, Any], request: Request) -> Response:
    definition = "CheckoutSessionWithOrder" if "order" in body and body.get("status") == "completed" \
        else "CheckoutSession"
    if problems := errors(definition, body):
        log.error("acp: the answer to %s %s is not a valid %s: %s", request.method, request.url.path, definition,
                  problems[:3])
        return error_response(500, error_body("processing_error", "processing_error", "internal error"))
    headers = {"Request-Id": request.headers["Request-Id"]} if "Request-Id" in request.headers else None
    return Response(answer_text(body), status_code=status, headers=headers, media_type="application/json")


def _endpoint(handler: Handler, request_schema: str | None, *, optional_body: bool = False) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        try:
            request.state.acp_caller = await _authenticate(request)
            _check_version(request)
            body: dict[str, Any] = {}
            if request_schema is not None:
                body = await _json(request, optional_body)
                check(request_schema, body)
            status, answer = await handler(request, body)
        except Replayed as replay:
            return raw_response(replayed(replay.answer))
        except _VersionRefused as refused:
            return error_response(400, error_body("invalid_request", refused.code, refused.message, "API-Version",
                                                  supported_versions=list(SUPPORTED_VERSIONS)))
        except OneError as error:
            held = pending(request.scope)
            return raw_response(early) if held and (early := key_refused(error, held.key)) else from_error(error)
        return _answer(status, answer, request)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


HANDLERS: tuple[tuple[str, str, Handler, str | None], ...] = (
    ("POST", "/checkout_sessions", create_session, "CheckoutSessionCreateRequest"),
    ("POST", "/checkout_sessions/{session_id}", update_session, "CheckoutSessionUpdateRequest"),
    ("GET", "/checkout_sessions/{session_id}", get_session, None),
    ("POST", "/checkout_sessions/{session_id}/complete", complete_session, "CheckoutSessionCompleteRequest"),
    ("POST", "/checkout_sessions/{session_id}/cancel", cancel_session, "CancelSessionRequest"),
)
"""(method, path under /acp, handler, the bundle's request definition) of every ACP checkout route."""

for _method, _path, _handler, _schema in HANDLERS:  # plain routes: ACP's contract, not the platform's OpenAPI
    router.add_route(BASE + _path, _endpoint(_handler, _schema, optional_body=_handler is cancel_session),
                     methods=[_method], include_in_schema=False)
