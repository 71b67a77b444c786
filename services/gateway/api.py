"""The gateway's ASGI app, built on a bus client: `create_app(bus, settings)`.

A factory, not a module-level app, so the service runtime builds it on its own connection
and a test builds one on the test stack's. The app holds no state of its own beyond the
key cache and this replica's rate windows: everything it answers comes from one bus request.
The routes get the bus as an `EdgeBus` (permission, operation rate rules, timeout: `edge.py`),
and every request passes the `EdgeMiddleware` (request id, trace, body limit, metrics, log).
"""

from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from services.gateway import (
    health,
    http_metrics,
    problems,
    routes_access,
    routes_agents,
    routes_agui,
    routes_ap2,
    routes_discounts,
    routes_docs,
    routes_events,
    routes_external,
    routes_graph,
    routes_jobs,
    routes_knowledge,
    routes_packs,
    routes_plugins,
    routes_scheduling,
    routes_social,
    routes_stream,
    routes_tenancy,
    routes_webhooks_in,
    routes_whoami,
)
from services.gateway.a2a.mount import mount as mount_a2a
from services.gateway.acp import delegate_payment, routes as acp_routes
from services.gateway.acp.idempotency import AcpIdempotency
from services.gateway.auth import KeyVerifier
from services.gateway.edge import EdgeBus
from services.gateway.limits import RateLimiter
from services.gateway.mcp.mount import mount as mount_mcp
from services.gateway.middleware import EdgeMiddleware
from services.gateway.settings import GatewaySettings
from services.gateway.x402 import routes as x402_routes
from shared import __version__
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient

DESCRIPTION = """The HTTP edge of ONE on a bus. Authenticate with an API key (`Authorization: Bearer <key>`
or `X-API-Key`); every request acts in the key's organization. Errors are RFC 9457
`application/problem+json` bodies whose `code` is the platform's stable error code."""


NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
"""FastAPI's own OpenTelemetry off: `EdgeMiddleware` makes the one HTTP span (the trace's root, the parent of
the route's bus request) and the Prometheus metrics; a second span per request and per step only cost time."""


def create_app(bus: BusClient, settings: Settings) -> FastAPI:
    settings = GatewaySettings.from_common(settings)
    app = FastAPI(title="ONE on a bus", version=__version__, description=DESCRIPTION, telemetry=NO_NATIVE_TELEMETRY)
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.gateway_replicas)
    app.state.bus = EdgeBus(bus, app.state.limiter, settings.gateway_request_timeout)
    app.state.keys = KeyVerifier(bus, settings.gateway_key_cache_ttl, settings.gateway_key_cache_size)
    app.add_middleware(AcpIdempotency)  # added first: it runs inside the edge (body limit, request id, trace)
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.gateway_max_body_bytes,
                       access_log_enabled=settings.gateway_access_log)
    problems.install(app)
    app.add_route("/healthz", health.healthz, include_in_schema=False)
    app.add_route("/readyz", health.readyz, include_in_schema=False)
    app.add_route("/metrics", http_metrics.metrics, include_in_schema=False)
    app.include_router(health.router)
    app.include_router(routes_graph.router)
    # The protocol edges next: other agents call them at machine rates, and a request's route is found by trying
    # the routes in order (~5 µs each; the management API below has ~170).
    app.include_router(delegate_payment.router)
    app.include_router(acp_routes.router)  # ACP checkout: /acp/checkout_sessions
    mount_a2a(app)  # every published agent's A2A server: /a2a/{org slug or id}/{agent slug}
    x402_routes.install(app, settings)
    app.include_router(routes_tenancy.router)
    app.include_router(routes_events.router)
    app.include_router(routes_stream.router)
    app.include_router(routes_docs.router)
    app.include_router(routes_knowledge.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_social.router)
    app.include_router(routes_scheduling.router)
    app.include_router(routes_external.router)
    app.include_router(routes_agents.router)
    app.include_router(routes_agui.router)
    app.include_router(routes_whoami.router)
    app.include_router(routes_packs.router)  # packs: /v1/packs
    app.include_router(routes_plugins.router)  # the plugin registry and the org's installs: /v1/plugins
    app.include_router(routes_access.router)  # field masks and scope rules: /v1/access/...
    app.include_router(routes_webhooks_in.router)  # signed inbound webhooks: /v1/webhooks/in/{source_id} (no key)
    app.include_router(routes_ap2.router)  # AP2 v2 mandates: /v1/ap2/...
    app.include_router(routes_discounts.router)  # discount codes ACP checkout applies: /v1/discounts
    mount_mcp(app)  # the platform as an MCP server: /mcp (Streamable HTTP)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.problem_media_type(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
