"""Every error the edge reports, as one HTTP status and an RFC 9457 `application/problem+json` body.

A bus error keeps its stable `code` (what a client branches on) and its `details`; the status
comes from the error's family, so a service's refinement (`invalid_properties`, `last_owner`)
needs no entry here. An unexpected failure is a 500 that says nothing about the inside: its
error id is in the log, not a stack trace in the body.
"""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.kernel.errors import MalformedMessage, OneError
from shared.kernel.ids import uuid7

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_CODE = {"payload_too_large": 413}
"""Codes whose status differs from their family's (payload_too_large is an `invalid` refinement)."""

STATUS_BY_FAMILY = {
    "invalid": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "quota_exceeded": 429,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}


class Problem(BaseModel):
    """RFC 9457 problem details, with the platform's stable error code and its structured details."""

    type: str = Field(description="`urn:one:error:<code>`: names the problem type.")
    title: str = Field(description="A short summary of the problem type.")
    status: int
    detail: str = Field(description="What went wrong in this occurrence, for a person.")
    code: str = Field(description="The stable error code, the same as the bus reply's.")
    details: dict[str, Any] = Field(default_factory=dict)
    instance: str | None = Field(None, description="The request path.")


def status_of(error: OneError) -> int:
    """The code's own status, else that of the nearest family here: the kernel's own refinements (`malformed`,
    `unknown_type`, ...) are their own family to `OneError.family()`, yet as invalid as `invalid` is."""
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    families = (c.code for c in type(error).__mro__ if issubclass(c, OneError) and c.code in STATUS_BY_FAMILY)
    return STATUS_BY_FAMILY[next(families, "internal")]


def problem_response(request: Request, status: int, code: str, detail: str, details: dict[str, Any] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(type=f"urn:one:error:{code}", title=code.replace("_", " ").capitalize(), status=status,
                   detail=detail, code=code, details=details or {}, instance=request.url.path)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers, media_type=PROBLEM_JSON)


def one_error_response(request: Request, error: OneError) -> JSONResponse:
    status = status_of(error)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="one"'
    retry_after = error.details.get("retry_after")
    if status in (429, 503) and isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
    if status >= 500 and error.family() == "internal":  # the service logged it; only its error id goes out
        details = {k: v for k, v in error.details.items() if k == "error_id"}
        return problem_response(request, status, error.code, "internal error", details, headers)
    return problem_response(request, status, error.code, error.message, error.details, headers)


async def _one_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OneError)
    return one_error_response(request, error)


async def _validation(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's own validation (body, path, query) answered like a service's `invalid`."""
    assert isinstance(error, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in error.errors()]
    return problem_response(request, 422, "invalid", "the request does not match its schema", {"errors": errors})


async def _http(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own refusals (unknown path, wrong method) in the same shape."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400:  # FastAPI's "error parsing the body": bytes that are not JSON, as the bus calls them
        return one_error_response(request, MalformedMessage("the request body is not valid JSON"))
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return problem_response(request, error.status_code, code, str(error.detail), headers=error.headers)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    error_id = str(uuid7())
    log.exception("unhandled error %s on %s %s", error_id, request.method, request.url.path)
    return problem_response(request, 500, "internal", "internal error", {"error_id": error_id})


def install(app: FastAPI) -> None:
    app.add_exception_handler(OneError, _one_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entries for the problem statuses a route can answer."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses}


_DESCRIPTIONS = {
    401: "No API key, or one that is unknown, revoked or expired.",
    403: "The key's role or scopes do not allow this.",
    404: "No such resource in the key's organization.",
    409: "Conflicts with the current state.",
    413: "The request or its reply is larger than the bus carries.",
    422: "The request does not match its schema or the service's rules.",
    429: "A quota or rate limit is used up; `Retry-After` says when to retry, when known.",
    500: "An unexpected failure; `details.error_id` finds it in the logs.",
    503: "The service behind the gateway did not answer.",
}


def problem_media_type(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a response model in the route's media type (application/json, text/event-stream);
    problems are application/problem+json."""
    for path in openapi.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                for media_type in [m for m in content if m != PROBLEM_JSON] if status[:1] in "45" else ():
                    content[PROBLEM_JSON] = content.pop(media_type)
    return openapi
