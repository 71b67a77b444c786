"""The OpenAPI document: 3.1, every route of the app, the security schemes, and problem bodies for errors."""

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from services.gateway.api import create_app
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient

OPEN = {("post", "/v1/signup"), ("post", "/v1/email-verification/confirm")}
"""The routes that take no key: every other one is secured, and answers a missing key with a 401 problem."""


def app_routes(bus: BusClient, settings: Settings) -> set[tuple[str, str]]:
    """(method, path) of every API route of the app, its included routers' too, as OpenAPI spells it (no `:path`)."""
    routes = iter_route_contexts(create_app(bus, settings).routes)
    return {(method.lower(), route.path_format) for route in routes if isinstance(route.original_route, APIRoute)
            for method in route.methods or ()}


async def test_the_document_lists_every_route(http: httpx.AsyncClient, bus: BusClient, settings: Settings) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1.")
    listed = {(method, path) for path, item in doc["paths"].items() for method in item}
    routes = app_routes(bus, settings)
    assert listed == routes and OPEN <= routes
    assert set(doc["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    for method, path in routes:
        operation = doc["paths"][path][method]
        if (method, path) not in OPEN:
            assert operation["security"], f"{method} {path} is not secured"
        for status in ("422",) if (method, path) in OPEN else ("401", "422"):
            content = operation["responses"][status]["content"]
            assert set(content) == {"application/problem+json"}, (method, path, status)
            assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        success = next(s for s in operation["responses"] if s.startswith("2"))
        assert operation["responses"][success]["content"]["application/json"]["schema"]["$ref"]


async def test_bodies_are_the_contract_s_payload_models(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert {"ThingCreate", "ThingPatch", "ConnectionCreate", "Thing", "Things", "Connection", "Problem"} <= set(schemas)
    assert {"AppendEvent", "AppendBatch", "EventPage", "LabelEnsure", "ItemAdd", "SearchQuery", "HybridQuery",
            "SearchResult"} <= set(schemas)
    assert schemas["ThingCreate"]["additionalProperties"] is False
    assert "id" not in schemas["ThingPatch"]["properties"] and "org_id" not in schemas["ThingCreate"]["properties"]
    for path, item in doc["paths"].items():  # no body or query string of a route names an org: the key does
        for method, operation in item.items():
            assert "org_id" not in {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}, path
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in body:
                schema = schemas[body["$ref"].rsplit("/", 1)[1]]
                assert schema.get("additionalProperties") is False and "org_id" not in schema["properties"], (method, path)
