"""The gateway's ASGI app, built on a bus client: `create_app(bus, settings)`.

A factory, not a module-level app, so the service runtime builds it on its own connection
and a test builds one on the test stack's. The app holds no state of its own beyond the
key cache: everything it answers comes from one bus request.
"""

from typing import Any

from fastapi import FastAPI

from services.gateway import (
    problems,
    routes_events,
    routes_graph,
    routes_knowledge,
    routes_tenancy,
)
from services.gateway.auth import KeyVerifier
from services.gateway.settings import GatewaySettings
from shared import __version__
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient

DESCRIPTION = """The HTTP edge of ONE on a bus. Authenticate with an API key (`Authorization: Bearer <key>`
or `X-API-Key`); every request acts in the key's organization. Errors are RFC 9457
`application/problem+json` bodies whose `code` is the platform's stable error code."""


def create_app(bus: BusClient, settings: Settings) -> FastAPI:
    settings = GatewaySettings.from_common(settings)
    app = FastAPI(title="ONE on a bus", version=__version__, description=DESCRIPTION)
    app.state.bus = bus
    app.state.keys = KeyVerifier(bus, settings.gateway_key_cache_ttl, settings.gateway_key_cache_size)
    problems.install(app)
    app.include_router(routes_graph.router)
    app.include_router(routes_tenancy.router)
    app.include_router(routes_events.router)
    app.include_router(routes_knowledge.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.problem_media_type(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
