"""The bus's AsyncAPI document at `/asyncapi.json`, beside the HTTP API's `/openapi.json`.

Built once per process from the contracts (`shared.contracts.asyncapi`), like FastAPI builds the
OpenAPI document, and open without a key as that one is: it describes message shapes, not data.
A plain Starlette route, so it is no operation of the OpenAPI document.
"""

import asyncio
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.contracts.asyncapi import asyncapi_document

router = APIRouter()


@cache
def _document() -> dict[str, Any]:
    return asyncapi_document()


async def asyncapi(request: Request) -> JSONResponse:
    return JSONResponse(await asyncio.to_thread(_document))  # the first build takes a moment: not on the loop


router.add_route("/asyncapi.json", asyncapi, methods=["GET"], include_in_schema=False)
