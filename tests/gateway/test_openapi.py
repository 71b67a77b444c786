"""The OpenAPI document: 3.1, every route, the security schemes, and problem bodies for errors."""

import httpx

ROUTES = {
    ("post", "/v1/things"), ("get", "/v1/things"),
    ("get", "/v1/things/{id}"), ("patch", "/v1/things/{id}"), ("delete", "/v1/things/{id}"),
    ("post", "/v1/things/{id}/restore"),
    ("post", "/v1/connections"), ("get", "/v1/connections"), ("delete", "/v1/connections/{id}"),
}


async def test_the_document_lists_every_route(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1.")
    listed = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert listed == ROUTES
    assert set(doc["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    for method, path in ROUTES:
        operation = doc["paths"][path][method]
        assert operation["security"], f"{method} {path} is not secured"
        for status in ("401", "422"):
            content = operation["responses"][status]["content"]
            assert set(content) == {"application/problem+json"}, (method, path, status)
            assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        success = next(s for s in operation["responses"] if s.startswith("2"))
        assert operation["responses"][success]["content"]["application/json"]["schema"]["$ref"]


async def test_bodies_are_the_contract_s_payload_models(http: httpx.AsyncClient) -> None:
    schemas = (await http.get("/openapi.json")).json()["components"]["schemas"]
    assert {"ThingCreate", "ThingPatch", "ConnectionCreate", "Thing", "Things", "Connection", "Problem"} <= set(schemas)
    assert schemas["ThingCreate"]["additionalProperties"] is False
    assert "id" not in schemas["ThingPatch"]["properties"] and "org_id" not in schemas["ThingCreate"]["properties"]
