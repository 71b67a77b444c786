"""`POST /acp/agentic_commerce/delegate_payment`: ACP's Delegate Payment API, served by the built-in test PSP.

The spec's path (`/agentic_commerce/delegate_payment`) under the ACP base `/acp`, so an agent platform
configured with the merchant's ACP base URL finds it where the spec puts it. The body is checked
against `schema.delegate_payment.json` (`DelegatePaymentRequest`, unknown fields refused), the card
is vaulted by commerce (`acp.delegate_payment`) and the 201 body is ACP's `DelegatePaymentResponse`.
Idempotency is the `/acp/` POST middleware's (idempotency.py). A plain route like checkout's, out of
the platform's OpenAPI (its contract is ACP's). Errors use the Delegate Payment
`Error` shape; its `code` enum has one code for a refused field, `invalid_card`, which every refused
field gets (with `param`, the field's JSONPath), as the spec's own examples do.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from referencing import Registry, Resource

from services.gateway.acp.errors import error_body, error_response, from_error
from services.gateway.acp.idempotency import Replayed, key_refused, pending, raw_response, replayed, settled
from services.gateway.auth import api_key_header, authenticated, bearer
from shared.contracts.commerce.acp_schema import SUPPORTED_VERSIONS
from shared.contracts.commerce.idempotency import answer_text
from shared.contracts.commerce.payments import DELEGATE_PAYMENT, DelegatePaymentCreate
from shared.kernel.envelope import Protocol
from shared.kernel.errors import InvalidRequest, OneError

router = APIRouter()
PATH = "/acp/agentic_commerce/delegate_payment"

BUNDLE = Path(__file__).parents[3] / "shared" / "contracts" / "commerce" / "acp_spec" / "schema.delegate_payment.json"


@cache
def validator(definition: str) -> Draft202012Validator:
    """A validator for one `$defs` entry of the Delegate Payment bundle (its `$ref`s resolved in the bundle)."""
    bundle = json.loads(BUNDLE.read_text())
    registry = Registry().with_resource(bundle["$id"], Resource.from_contents(bundle))
    return Draft202012Validator({"$ref": f"{bundle['$id']}#/$defs/{definition}"}, registry=registry)


def _refused(status: int, message: str, parts: Any = (), **extra: Any) -> JSONResponse:
    param = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return error_response(status, error_body("invalid_request", "invalid_card", message, param, **extra))


async def delegate_payment(request: Request) -> Response:
    try:
        caller = await authenticated(request, await bearer(request), await api_key_header(request))
    except OneError as error:
        return from_error(error)
    if request.headers.get("API-Version") not in SUPPORTED_VERSIONS:
        return _refused(400, f"API-Version must be one of {', '.join(SUPPORTED_VERSIONS)}",
                        supported_versions=list(SUPPORTED_VERSIONS))
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _refused(400, "the request body is not JSON")
    problem = next(iter(sorted(validator("DelegatePaymentRequest").iter_errors(body), key=lambda e: e.path)), None)
    if problem is not None:
        return _refused(400, problem.message[:300], problem.absolute_path)
    try:
        payload = DelegatePaymentCreate.model_validate(body)
    except ValidationError as invalid:
        first = invalid.errors(include_url=False, include_input=False)[0]
        return _refused(400, first["msg"], first["loc"])
    if (held := pending(request.scope)) is not None:
        payload.idempotency = held.claim(201)
    try:
        created = await settled(held, request.app.state.bus.request(DELEGATE_PAYMENT, payload, caller,
                                                                    protocol=Protocol.ACP))
    except Replayed as replay:
        return raw_response(replayed(replay.answer))
    except OneError as error:
        if held is not None and (early := key_refused(error, held.key)) is not None:
            return raw_response(early)
        if isinstance(error, InvalidRequest):  # the card cannot be vaulted: `details.param` names the field
            param = str(error.details.get("param", "$"))
            return error_response(422, error_body("invalid_request", "invalid_card", error.message, param))
        return from_error(error)
    return Response(answer_text(created.response), status_code=201, media_type="application/json")


router.add_route(PATH, delegate_payment, methods=["POST"], include_in_schema=False)  # ACP's contract, not our OpenAPI
