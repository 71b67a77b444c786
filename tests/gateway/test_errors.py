"""Errors as RFC 9457 problems: the status of each family, the stable code, nothing of the inside."""

from uuid import uuid4

import httpx
import pytest
from starlette.requests import Request

from services.gateway.problems import one_error_response, status_of
from shared.contracts.graph import InvalidProperties, ThingNotFound, VersionConflict
from shared.kernel import errors
from tests.gateway.conftest import Caller, assert_problem


class TestOverHttp:
    async def test_an_unknown_id_is_a_404_problem(self, alice: Caller) -> None:
        body = assert_problem(await alice.call("GET", f"/v1/things/{uuid4()}"), 404)
        assert body["type"] == f"urn:one:error:{body['code']}" and body["instance"].startswith("/v1/things/")

    async def test_a_body_that_breaks_the_payload_model_is_a_422_problem(self, alice: Caller) -> None:
        body = assert_problem(await alice.call("POST", "/v1/things", {"type": "Not A Type!", "name": ""}), 422, "invalid")
        assert {tuple(e["loc"]) for e in body["details"]["errors"]} == {("body", "type"), ("body", "name")}
        assert_problem(await alice.call("POST", "/v1/things", {"name": "x", "surprise": 1}), 422, "invalid")
        assert_problem(await alice.call("GET", "/v1/things/not-a-uuid"), 422, "invalid")
        assert_problem(await alice.call("GET", "/v1/things", limit=0), 422, "invalid")
        assert_problem(await alice.call("GET", "/v1/things", where="no-op-here"), 422, "invalid")

    async def test_not_json_is_a_422_problem(self, alice: Caller) -> None:
        response = await alice.http.post("/v1/things", content=b"{not json", headers={"content-type": "application/json"})
        assert_problem(response, 422, "invalid")

    async def test_what_schemathesis_found_is_refused_as_invalid(self, alice: Caller) -> None:
        """Each was a 500 (`tests/gateway/test_schemathesis.py` found them): bytes that are not UTF-8, numbers
        that Postgres cannot hold (an interval of 1e307 days, a position past bigint)."""
        response = await alice.http.post("/v1/things", content=b"\x80 not utf-8",
                                         headers={"content-type": "application/json"})
        assert_problem(response, 422, "malformed")
        assert_problem(await alice.call("POST", "/v1/knowledge/gc", {"older_than_days": 1.5e307}), 422, "invalid")
        assert_problem(await alice.call("GET", "/v1/events", after=2**63), 422, "invalid")
        assert_problem(await alice.call("GET", "/v1/events/dead-letters", after_id=2**63), 422, "invalid")

    async def test_the_service_s_own_rules_keep_their_code(self, alice: Caller) -> None:
        response = await alice.call("POST", "/v1/things", {"type": "no_such_type", "name": "x"})
        assert_problem(response, 422, "unknown_ontology_type")
        response = await alice.call("GET", "/v1/things", where="a\" || true:gt:1")
        assert_problem(response, 422)

    async def test_unknown_paths_and_methods_are_problems_too(self, alice: Caller, http: httpx.AsyncClient) -> None:
        assert_problem(await http.get("/v1/nothing-here"), 404, "not_found")
        assert_problem(await alice.call("PUT", "/v1/things"), 405, "method_not_allowed")


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/v1/x", "headers": [], "query_string": b""})


@pytest.mark.parametrize(("error", "status"), [
    (errors.InvalidRequest("bad"), 422),
    (InvalidProperties("bad"), 422),
    (errors.PayloadTooLarge("big", {"size": 2, "max_payload": 1}), 413),
    (errors.MalformedMessage("not JSON"), 422),  # the kernel's own refinements of `invalid` (were 500)
    (errors.UnknownMessageType("who?"), 422),
    (errors.OneError.from_payload({"code": "protocol_mismatch", "family": "protocol_mismatch"}), 422),
    (errors.Unauthenticated(), 401),
    (errors.Forbidden(), 403),
    (errors.NotFound(), 404),
    (ThingNotFound(), 404),
    (errors.Conflict(), 409),
    (VersionConflict(), 409),
    (errors.QuotaExceeded(), 429),
    (errors.RateLimited("slow down", {"retry_after": 1.2}), 429),
    (errors.Unavailable(), 503),
    (errors.Internal("boom at line 3", {"error_id": "e1", "sql": "SELECT secret"}), 500),
    (errors.OneError.from_payload({"code": "last_owner", "family": "conflict"}), 409),
    (errors.OneError.from_payload({"code": "brand_new", "family": "nonsense"}), 500),
])
def test_every_family_has_one_status(error: errors.OneError, status: int) -> None:
    assert status_of(error) == status
    response = one_error_response(_request(), error)
    assert response.status_code == status and response.media_type == "application/problem+json"


def test_rate_limited_says_when_to_retry_and_internal_says_nothing_inside() -> None:
    limited = one_error_response(_request(), errors.RateLimited("slow down", {"retry_after": 1.2}))
    assert limited.headers["retry-after"] == "2"
    assert "retry-after" not in one_error_response(_request(), errors.RateLimited("slow down")).headers
    internal = one_error_response(_request(), errors.Internal("boom at line 3", {"error_id": "e1", "sql": "SELECT 1"}))
    assert b"boom" not in internal.body and b"SELECT" not in internal.body and b'"error_id":"e1"' in internal.body
