"""ACP's error body for the checkout routes: `{type, code, message, param?}` (the bundle's `Error`), not problem+json.

`type` is ACP's category (`invalid_request` for anything the caller can fix, `processing_error` for our
failures, `service_unavailable` when a service does not answer); `code` is the platform's stable error
code, or for a schema refusal the ACP code (`missing`, `unknown_field`, `invalid`); `param` is the
JSONPath of the offending field when there is one. HTTP statuses: 400 invalid, 401, 403, 404, 405 (the
session's status forbids the verb: cancel after complete, ...), 409 (a complete is in progress, a
conflicting change), 429 (with Retry-After), 503, 500.
"""

import logging
from typing import Any

from fastapi.responses import JSONResponse

from shared.contracts.commerce.acp import CheckoutBusy, CheckoutNotAllowed
from shared.kernel.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    OneError,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[OneError], int], ...] = (
    (CheckoutNotAllowed, 405), (CheckoutBusy, 409), (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404),
    (RateLimited, 429), (QuotaExceeded, 429), (Conflict, 409), (InvalidRequest, 400), (Unavailable, 503),
)


def status_of(error: OneError) -> int:
    return next((status for kind, status in _STATUS if isinstance(error, kind)), 500)


def error_body(type_: str, code: str, message: str, param: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "code": code, "message": message, **extra}
    if param:
        body["param"] = param
    return body


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def from_error(error: OneError) -> JSONResponse:
    """The ACP answer to a typed error from the bus or the edge."""
    status = status_of(error)
    headers: dict[str, str] = {}
    if status >= 500:
        kind = "service_unavailable" if status == 503 else "processing_error"
        if status == 500:
            log.error("acp: unexpected error %r", error)
        return error_response(status, error_body(kind, error.code if status == 503 else "processing_error",
                                                 error.message if status == 503 else "internal error"))
    if status == 429 and (retry := error.details.get("retry_after")) is not None:
        headers["Retry-After"] = str(max(1, int(float(retry) + 0.999)))
    code = str(error.details.get("acp_code") or error.code)
    param = error.details.get("param")
    return error_response(status, error_body("invalid_request", code, error.message, str(param) if param else None),
                          headers)
