"""The SDK's HTTP route table against the gateway's own routes: a route that changes without the table fails here."""

from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from services.gateway.api import create_app
from shared.contracts.commerce.x402 import PRICEABLE_ROUTES
from shared.contracts.tenancy import VERIFY_KEY
from shared.kernel.envelope import MessageSpec, message_spec
from shared.kernel.settings import Settings
from shared.tools.sdk import http
from shared.tools.sdk.routes import HTTP_ROUTES

CALLED_BY_NAME = {("GET", http.WHOAMI): VERIFY_KEY.type, ("GET", "/v1/runs/{id}/events"): "agents.run.steps"}
"""Routes the SDK calls by path, not through the table (their payload is not the spec's: the key is the header;
a run's AG-UI stream reads `agents.run.steps` and the run's live step subject)."""
NO_SPEC = {("GET", http.STATUS), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
"""Routes that send no contract message: health, readiness, metrics (the SDK's `status` reads /v1/status)."""
NO_SPEC |= {(route.method, f"/x402/{{org}}/{route.template}") for route in PRICEABLE_ROUTES}
"""x402's paid routes: the payer is a wallet with x402's own client, not the SDK (services/gateway/x402)."""
PUBLISHED = {("GET", "/v1/ap2/{org_id}/jwks.json"): "ap2.jwks",
             ("POST", "/v1/webhooks/in/{source_id}"): "tenancy.webhook.receive"}
"""An org's AP2 keys published for other parties' verifiers (no key); the SDK reads its own at `/v1/ap2/jwks`.
And the inbound-webhook receiver: third parties call it with their own signature, never the SDK."""


def gateway_routes() -> dict[tuple[str, str], tuple[APIRoute, MessageSpec[Any, Any] | None]]:
    found = {}
    for context in iter_route_contexts(create_app(None, Settings()).routes):  # type: ignore[arg-type]
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        names = route.endpoint.__code__.co_names
        specs = [route.endpoint.__globals__[n] for n in names if isinstance(route.endpoint.__globals__.get(n), MessageSpec)]
        assert len(specs) <= 1, f"{context.path_format} sends more than one message: {specs}"
        for method in route.methods:
            found[(method, context.path_format)] = (route, specs[0] if specs else None)
    return found


ROUTES = gateway_routes()


def test_every_gateway_route_that_sends_a_message_is_in_the_table() -> None:
    by_route = {(r.method, r.path): type_ for type_, r in HTTP_ROUTES.items()} | CALLED_BY_NAME | PUBLISHED
    for (method, path), (_, spec) in ROUTES.items():
        if spec is None:
            assert (method, path) in NO_SPEC, f"{method} {path} sends no message and is not a known spec-less route"
            continue
        assert by_route.get((method, path)) == spec.type, f"{method} {path} ({spec.type}) is missing from HTTP_ROUTES"


@pytest.mark.parametrize("type_", sorted(HTTP_ROUTES))
def test_each_row_matches_its_route(type_: str) -> None:
    row = HTTP_ROUTES[type_]
    spec = message_spec(type_)
    assert (row.method, row.path) in ROUTES, f"{type_}: no gateway route {row.method} {row.path}"
    route, sent = ROUTES[(row.method, row.path)]
    assert sent is not None and sent.type == type_, f"{row.method} {row.path} sends {sent and sent.type}, not {type_}"
    dependant = route.dependant
    assert set(row.path_fields) == {p.name for p in dependant.path_params}
    fields = spec.payload.model_fields
    for parameter, field in row.path_fields.items():
        assert field in fields, f"{type_}: path {{{parameter}}} carries {field}, not a field of {spec.payload.__name__}"
        assert parameter not in fields or parameter == field, f"{type_}: {{{parameter}}} is the payload's own field"
    sends = "body" if dependant.body_params else "query" if dependant.query_params else "none"
    assert row.send == sends, f"{type_}: the route takes its payload as {sends}, the table says {row.send}"
    media_type = getattr(route.response_class, "media_type", None)
    assert row.stream == (media_type == "text/event-stream"), f"{type_}: stream={row.stream}, the route answers {media_type}"
    for name in (*row.empty_nulls, *row.clauses):
        assert name in fields, f"{type_}: {name} is not a field of {spec.payload.__name__}"
