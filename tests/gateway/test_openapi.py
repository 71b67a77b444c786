"""The OpenAPI document: valid 3.1, every route of the app, the security schemes, and problem bodies for errors."""

from unittest.mock import ANY

import httpx
from fastapi.routing import APIRoute, iter_route_contexts
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from services.gateway.api import create_app
from shared.contracts.commerce.x402 import PRICEABLE_ROUTES
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.gateway.test_asyncapi import refs, resolve

OPEN = {("post", "/v1/signup"), ("post", "/v1/email-verification/confirm")}
OPEN |= {(route.method.lower(), f"/x402/{{org}}/{route.template}")  # x402: the payer is a wallet (docs/x402.md)
         for route in PRICEABLE_ROUTES}
OPEN |= {("get", "/v1/ap2/{org_id}/jwks.json")}  # AP2: an org's public keys, for other parties' verifiers
OPEN |= {("get", "/v1/public/orgs/{ref}")}  # an org's public facts (id, slug, name), as its agents' A2A URLs name it
OPEN |= {("post", "/v1/webhooks/in/{source_id}")}  # a third party's signed webhook: the signature is the credential
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
        success = operation["responses"][next(s for s in operation["responses"] if s.startswith("2"))]["content"]
        assert success and set(success) <= {"application/json", "text/event-stream"}, (method, path)  # a model, events
        assert "application/json" not in success or success["application/json"]["schema"]["$ref"], (method, path)


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


async def test_the_document_is_valid_openapi_3_1(http: httpx.AsyncClient) -> None:
    """Against the OpenAPI Initiative's own 3.1 schema (the copy schemathesis ships; no `openapi-spec-validator`
    is installed), each component schema against JSON Schema 2020-12, and every `$ref` resolving."""
    doc = (await http.get("/openapi.json")).json()
    errors = sorted(Draft202012Validator(OPENAPI_31).iter_errors(doc), key=str)
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]]
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for ref in set(refs(doc)):
        resolve(doc, ref)


async def test_every_error_is_a_problem_and_every_route_is_secured(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"] == {
        "HTTPBearer": {"type": "http", "scheme": "bearer", "description": ANY},
        "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": ANY},
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert "422" in statuses, (method, path)
            if (method, path) not in OPEN:
                assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}], (method, path)
                assert {"401", "403", "429", "503"} <= statuses, (method, path)
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert response["content"] == problem and response["description"], (method, path, status)


async def test_the_interactive_docs_answer(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text and "swagger-ui" in page.text.lower()
