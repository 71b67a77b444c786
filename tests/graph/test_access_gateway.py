"""Access rules through the gateway: an owner sets them over `/v1/access/...`, a `customer` key reads over HTTP
and meets them on every read path (get, list, neighbours, connections, knowledge search), as problem+json
where it is refused."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.contracts.graph import IDENTITY_BACKFILL
from shared.contracts.knowledge import ITEM_ADD
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, alice, assert_problem, caller_for  # noqa: F401 (fixtures)
from tests.graph.conftest import link, make_thing
from tests.tenancy.conftest import add_member

COURSE = {"title": "A course", "price": 10, "currency": "USD", "internalNotes": "margin 80%"}


@pytest.fixture
async def customer(bus: BusClient, alice: Caller, gateway: str) -> AsyncIterator[Caller]:  # noqa: F811
    customer = await caller_for(gateway, await add_member(bus, alice.account, role="customer"))
    yield customer
    await customer.http.aclose()


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_customer_meets_the_rules_on_every_read_path(
    bus: BusClient, alice: Caller, customer: Caller  # noqa: F811
) -> None:
    owner = alice.account
    await bus.request(IDENTITY_BACKFILL, {}, owner.ctx, timeout=60)
    me = customer.account.person_id
    mine = (await make_thing(bus, owner.ctx, "course", "Mine", properties=COURSE)).id
    other = (await make_thing(bus, owner.ctx, "course", "Other", properties=COURSE)).id
    await link(bus, owner.ctx, me, mine, "enrolled_in")
    await link(bus, owner.ctx, mine, other, "references")
    for path, body in (("/v1/access/scopes", {"role": "customer", "thing_type": "course", "rule": "connected",
                                               "connection_type": "enrolled_in"}),
                       ("/v1/access/masks", {"role": "customer", "thing_type": "course", "field": "properties.price"}),
                       ("/v1/access/masks", {"role": "customer", "thing_type": "*", "field": "properties.internalNotes",
                                             "mode": "redact"})):
        assert_problem(await customer.call("POST", path, body), 403)  # admin only
        _ok(await alice.call("POST", path, body))
    got = _ok(await customer.call("GET", f"/v1/things/{mine}"))["thing"]["properties"]
    assert got["price"] == "***" and "internalNotes" not in got and got["title"] == "A course"
    assert_problem(await customer.call("GET", f"/v1/things/{other}"), 404)
    listed = _ok(await customer.call("GET", "/v1/things", type="course"))["things"]
    assert [t["id"] for t in listed] == [str(mine)] and listed[0]["properties"]["price"] == "***"
    near = {n["thing"]["id"] for n in _ok(await customer.call("GET", f"/v1/things/{me}/neighbors", depth=2))["neighbors"]}
    assert str(mine) in near and str(other) not in near
    links = _ok(await customer.call("GET", "/v1/connections", thing_id=str(mine)))["connections"]
    assert [(c["from_id"], c["to_id"]) for c in links] == [(str(me), str(mine))]
    await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": "Wombats, the hidden course", "source_thing_id": str(other),
                                 "source_field": "description"}, owner.ctx, timeout=60)
    hits = _ok(await customer.call("POST", "/v1/knowledge/search", {"query": "wombats", "k": 20}))["hits"]
    assert str(other) not in {h["item"]["source_thing_id"] for h in hits}
    everyone = _ok(await alice.call("POST", "/v1/knowledge/search", {"query": "wombats", "k": 20}))["hits"]
    assert str(other) in {h["item"]["source_thing_id"] for h in everyone}
    rules = _ok(await alice.call("GET", "/v1/access/masks", role="customer"))["masks"]
    assert sorted(r["field"] for r in rules) == ["properties.internalNotes", "properties.price"]
    price = next(r for r in rules if r["field"] == "properties.price")
    _ok(await alice.call("DELETE", f"/v1/access/masks/{price['id']}"))
    assert _ok(await customer.call("GET", f"/v1/things/{mine}"))["thing"]["properties"]["price"] == 10
    assert_problem(await alice.call("DELETE", f"/v1/access/masks/{price['id']}"), 404)
    scope = _ok(await alice.call("GET", "/v1/access/scopes"))["rules"][0]
    _ok(await alice.call("DELETE", f"/v1/access/scopes/{scope['id']}"))
    assert _ok(await customer.call("GET", f"/v1/things/{other}"))["thing"]["id"] == str(other)
    assert_problem(await alice.call("POST", "/v1/access/masks", {"role": "customer", "thing_type": "*",
                                                                 "field": "email"}), 422)
