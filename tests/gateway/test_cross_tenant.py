"""The cross-tenant attack suite: with org A's key, org B's ids and forged org ids get nothing through.

ONE table: a new route that takes an id, a body or a query is covered by adding its rows.
Placeholders name org B's ids (`{thing}`, `{deleted}`, `{connection}`, `{victim_org}`) and
A's own (`{own}`); a row refuses (404/403 problem, or 422 for a body or query that names an
org) or, for a list, answers nothing of B's. Afterwards B's data is checked unchanged.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.gateway.conftest import Caller, assert_problem
from tests.gateway.test_things import create


@dataclass(frozen=True)
class Attack:
    method: str
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, Any] = field(default_factory=dict)
    refused: tuple[int, ...] = (404, 403)  # `()`: a list route, which answers 200 with nothing of B's


FORGED = (422, 404, 403)  # a payload model refuses a field it does not define; an org id is never one

ATTACKS = [
    Attack("GET", "/v1/things/{thing}"),
    Attack("GET", "/v1/things/{thing}", query={"include": "references"}),
    Attack("PATCH", "/v1/things/{thing}", {"name": "pwned"}),
    Attack("PATCH", "/v1/things/{thing}", {"status": "archived"}),
    Attack("DELETE", "/v1/things/{thing}"),
    Attack("POST", "/v1/things/{deleted}/restore"),
    Attack("POST", "/v1/things/{thing}/restore"),
    Attack("DELETE", "/v1/connections/{connection}"),
    Attack("POST", "/v1/connections", {"from_id": "{own}", "to_id": "{thing}", "type": "references"}),
    Attack("POST", "/v1/connections", {"from_id": "{thing}", "to_id": "{own}", "type": "references"}),
    Attack("POST", "/v1/connections", {"from_id": "{thing}", "to_id": "{thing2}", "type": "references"}),
    Attack("GET", "/v1/connections", query={"thing_id": "{thing}"}, refused=()),
    Attack("GET", "/v1/things", query={"text": "Victim"}, refused=()),
    # forged org ids in bodies and query strings
    Attack("POST", "/v1/things", {"type": "blog_post", "name": "Victim forged", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("PATCH", "/v1/things/{own}", {"name": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/connections", {"from_id": "{own}", "to_id": "{own}", "type": "references",
                                       "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/things", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/things/{thing}", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/connections", query={"thing_id": "{thing}", "org_id": "{victim_org}"}, refused=FORGED),
]


def fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    return template


@pytest.fixture
async def victim(bob: Caller) -> dict[str, Any]:
    """Org B's data: two things, a link between them, a soft-deleted thing."""
    thing, thing2 = await create(bob, "Victim one"), await create(bob, "Victim two")
    deleted = await create(bob, "Victim deleted")
    await bob.call("DELETE", f"/v1/things/{deleted['id']}")
    link = await bob.call("POST", "/v1/connections", {"from_id": thing["id"], "to_id": thing2["id"], "type": "references"})
    assert link.status_code == 201, link.text
    return {"thing": thing, "thing2": thing2, "deleted": deleted, "connection": link.json()}


async def test_org_a_gets_nothing_of_org_b(alice: Caller, bob: Caller, victim: dict[str, Any]) -> None:
    own = await create(alice, "Own")
    ids = {name: row["id"] for name, row in victim.items()} | {"own": own["id"],
                                                               "victim_org": str(bob.account.org_id)}
    victim_ids = {row["id"] for row in victim.values()}
    for attack in ATTACKS:
        response = await alice.call(attack.method, fill(attack.path, ids), fill(attack.body, ids),
                                    **fill(attack.query, ids))
        where = f"{attack.method} {attack.path} {attack.body} {attack.query}"
        if attack.refused:
            assert response.status_code in attack.refused, f"{where}: {response.status_code} {response.text}"
            assert_problem(response, response.status_code)
        else:
            assert response.status_code == 200, f"{where}: {response.text}"
            assert not victim_ids & set(_ids_in(response.json())), f"{where} leaked: {response.text}"
        assert bob.account.key not in response.text

    await _unchanged(bob, victim)


async def _unchanged(bob: Caller, victim: dict[str, Any]) -> None:
    for name in ("thing", "thing2"):
        now = (await bob.call("GET", f"/v1/things/{victim[name]['id']}")).json()["thing"]
        assert now == victim[name], f"{name} changed"
    assert_problem(await bob.call("GET", f"/v1/things/{victim['deleted']['id']}"), 404)  # still deleted
    links = (await bob.call("GET", "/v1/connections", thing_id=victim["thing"]["id"])).json()["connections"]
    assert links == [victim["connection"]], "B's links changed"
    names = sorted(t["name"] for t in (await bob.call("GET", "/v1/things")).json()["things"])
    assert names == ["Victim one", "Victim two"], "something was created or removed in B"


def _ids_in(body: Any) -> list[str]:
    if isinstance(body, dict):
        return [v for k, v in body.items() if k.endswith("id") and isinstance(v, str)] + \
            [i for v in body.values() for i in _ids_in(v)]
    if isinstance(body, list):
        return [i for v in body for i in _ids_in(v)]
    return []
