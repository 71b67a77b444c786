"""Scopes at the edge: a key's scopes (and role) checked against the permission of the spec a route sends.

Each refusal is a 403 problem, and it happens at the gateway: the trace of the request has no bus
request for the refused spec. The permission a spec declares is the one its service checks, so a
key scoped to exactly that permission is let through by both.
"""

from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.contracts import eventlog, graph, knowledge, tenancy
from shared.contracts.tenancy import KEY_CREATE
from shared.kernel.envelope import MessageSpec
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, assert_problem, caller_for
from tests.tenancy.conftest import account, add_member

THING = {"type": "blog_post", "name": "scoped"}


async def scoped(gateway: str, bus: BusClient, owner: Caller, *scopes: str) -> Caller:
    issued = await bus.request(KEY_CREATE, {"name": "scoped", "scopes": list(scopes)}, owner.account.ctx)
    return await caller_for(gateway, await account(bus, issued.key))


def sends(spans: InMemorySpanExporter, request_id: str, spec: MessageSpec[Any, Any]) -> bool:
    """Whether the HTTP request with this id sent `spec` over the bus (a `<subject> send` span in its trace)."""
    finished = spans.get_finished_spans()
    server = next(s for s in finished if (s.attributes or {}).get("one.request_id") == request_id)
    trace_id = server.context.trace_id
    return any(s.name == f"{spec.subject} send" and s.context.trace_id == trace_id for s in finished)


async def test_a_key_scoped_to_reading_things_reads_but_writes_nothing(
    gateway: str, bus: BusClient, alice: Caller, spans: InMemorySpanExporter
) -> None:
    thing = (await alice.call("POST", "/v1/things", THING)).json()
    reader = await scoped(gateway, bus, alice, "things:read")
    async with reader.http:
        assert (await reader.call("GET", f"/v1/things/{thing['id']}")).status_code == 200
        for method, path, body in (("POST", "/v1/things", THING), ("PATCH", f"/v1/things/{thing['id']}", {"name": "x"}),
                                   ("DELETE", f"/v1/things/{thing['id']}", None), ("GET", "/v1/things", None)):
            refused = await reader.call(method, path, body)
            problem = assert_problem(refused, 403, "forbidden")
            assert "scopes" in problem["detail"], problem
        assert not sends(spans, refused.headers["x-request-id"], graph.THING_QUERY)  # refused before the bus
    assert (await alice.call("GET", f"/v1/things/{thing['id']}")).json()["thing"]["name"] == "scoped"  # unchanged


async def test_a_wildcard_scope_allows_its_resource_only(gateway: str, bus: BusClient, alice: Caller) -> None:
    writer = await scoped(gateway, bus, alice, "things:*", "quotas:consume")  # a thing takes a unit of its quota
    async with writer.http:
        created = await writer.call("POST", "/v1/things", THING)
        assert created.status_code == 201, created.text
        assert (await writer.call("DELETE", f"/v1/things/{created.json()['id']}")).status_code == 200
        assert_problem(await writer.call("GET", "/v1/events"), 403, "forbidden")
        assert_problem(await writer.call("GET", "/v1/knowledge/items"), 403, "forbidden")


async def test_the_role_is_checked_at_the_edge_too(
    gateway: str, bus: BusClient, alice: Caller, spans: InMemorySpanExporter
) -> None:
    customer = await caller_for(gateway, await add_member(bus, alice.account, role="customer"))
    async with customer.http:
        refused = await customer.call("DELETE", "/v1/things/00000000-0000-7000-8000-000000000000")
        assert_problem(refused, 403, "forbidden")
        assert not sends(spans, refused.headers["x-request-id"], graph.THING_DELETE)


async def test_the_status_route_declares_its_own_scope(gateway: str, bus: BusClient, alice: Caller,
                                                       http: httpx.AsyncClient) -> None:
    assert (await alice.call("GET", "/v1/status")).status_code == 200
    narrow = await scoped(gateway, bus, alice, "things:*")
    async with narrow.http:
        assert_problem(await narrow.call("GET", "/v1/status"), 403, "forbidden")
    status_reader = await scoped(gateway, bus, alice, "status:read")
    async with status_reader.http:
        assert (await status_reader.call("GET", "/v1/status")).status_code == 200
    unauthenticated = await http.get("/v1/status")
    assert_problem(unauthenticated, 401, "unauthenticated")
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("spec", [graph.THING_GET, graph.THING_QUERY, eventlog.QUERY, knowledge.ITEM_QUERY,
                                  tenancy.KEY_LIST, tenancy.QUOTA_USAGE])
async def test_a_key_scoped_to_exactly_a_spec_s_permission_passes_edge_and_service(
    gateway: str, bus: BusClient, alice: Caller, spec: MessageSpec[Any, Any]
) -> None:
    """The permission the spec declares is the one its service checks: neither refuses such a key."""
    path = {graph.THING_GET: "/v1/things/{id}", graph.THING_QUERY: "/v1/things", eventlog.QUERY: "/v1/events",
            knowledge.ITEM_QUERY: "/v1/knowledge/items", tenancy.KEY_LIST: "/v1/keys",
            tenancy.QUOTA_USAGE: f"/v1/orgs/{alice.account.org_id}/quotas"}[spec]
    if "{id}" in path:
        path = path.format(id=(await alice.call("POST", "/v1/things", THING)).json()["id"])
    assert spec.permission is not None
    exact = await scoped(gateway, bus, alice, spec.permission)
    async with exact.http:
        answered = await exact.call("GET", path)
        assert answered.status_code == 200, answered.text


CONDITIONAL = {
    "tenancy.organization.create": "platform owners only, decided by tenancy",
    "tenancy.organization.update": "which permission depends on the fields changed",
    "tenancy.organization.list": "platform owners only, decided by tenancy",
    "tenancy.person.me": "the caller's own person",
    "tenancy.person.update": "the caller's own person",
    "tenancy.member.remove": "leaving (oneself) or removing (members:remove)",
    "tenancy.quota.release": "quotas:consume or a quota manager, by metric",
    "tenancy.rbac.check": "members:read only to check another member",
    "tenancy.rate_limit.hit": "any member counts their own calls",
    "tenancy.email.verification.request": "the caller's own address",
    "tenancy.two_factor.enroll": "the caller's own second factor",
    "tenancy.two_factor.confirm": "the caller's own second factor",
    "tenancy.two_factor.disable": "the caller's own second factor",
}
"""Authenticated specs with no single permission every request needs: their service decides alone."""


def test_every_authenticated_spec_declares_its_permission() -> None:
    """A new spec of these contracts is checked at the edge unless it says why not (CONDITIONAL)."""
    modules = (graph, eventlog, knowledge, tenancy)
    specs = {s.type: s for m in modules for s in vars(m).values() if isinstance(s, MessageSpec)}
    undeclared = {t for t, s in specs.items() if s.requires_auth and s.permission is None}
    assert undeclared == set(CONDITIONAL), undeclared ^ set(CONDITIONAL)
    for spec in specs.values():
        if spec.permission is not None:
            resource, _, action = spec.permission.partition(":")
            assert resource and action and ":" not in action, spec.type
