"""Liveness, readiness and the platform's status, over HTTP.

`/healthz`: the process answers (a liveness probe restarts it otherwise). `/readyz`: the
broker answers a round trip and tenancy answers its health request, because without tenancy
no key can be verified: a replica that cannot serve is taken out of the balancer (503
`unavailable` problem) but not restarted. Both are plain routes, outside the API document,
with no key. `GET /v1/status` (a key allowed `status:read`) is what `one status` shows: each
service's health report, or the error that stood for it.
"""

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from services.gateway.auth import requires
from services.gateway.problems import error_responses, problem_response
from shared.kernel import subjects
from shared.kernel.errors import OneError
from shared.runtime.service import HealthReport, health_spec


class ServiceError(BaseModel):
    """A service that did not give its report: usually `unavailable` (nothing answered in time)."""

    code: str
    message: str


class PlatformStatus(BaseModel):
    services: dict[str, HealthReport | ServiceError] = Field(description="Every service of the platform, by name.")


router = APIRouter()


@router.get("/v1/status", responses=error_responses(401, 403, 422, 429, 503), tags=["status"],
            dependencies=[requires("status:read")])
async def status(request: Request) -> PlatformStatus:
    """Each service's health report, asked in parallel, as `one status` shows them."""
    answers = await _health(request, subjects.SERVICES)
    return PlatformStatus(services={
        name: ServiceError(code=a.code, message=a.message) if isinstance(a, OneError) else a for name, a in answers.items()
    })


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    bus = request.app.state.bus
    timeout = request.app.state.settings.gateway_health_timeout
    try:
        await bus.nc.flush(timeout=timeout)
    except Exception as error:  # a closed connection, a timeout: either way the broker did not answer
        return problem_response(request, 503, "unavailable", f"the broker did not answer: {type(error).__name__}")
    tenancy = (await _health(request, ("tenancy",)))["tenancy"]
    if isinstance(tenancy, OneError):
        return problem_response(request, 503, "unavailable", f"tenancy did not answer: {tenancy.message}")
    return JSONResponse({"status": "ready"})


async def _health(request: Request, services: tuple[str, ...]) -> dict[str, HealthReport | OneError]:
    bus = request.app.state.bus
    timeout = request.app.state.settings.gateway_health_timeout

    async def one(name: str) -> Any:
        try:
            return await bus.request(health_spec(name), timeout=timeout)
        except OneError as error:
            return error

    return dict(zip(services, await asyncio.gather(*(one(name) for name in services)), strict=True))
