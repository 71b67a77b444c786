"""`one things ...` and `one connections ...` against the real stack: each command's happy path and one refusal."""

import json
from uuid import UUID

import pytest

from tests.cli.conftest import Cli, one_line_error

pytestmark = pytest.mark.timeout(900)  # each command is a process of its own; the machine is shared
MISSING = "00000000-0000-7000-8000-000000000000"


COURSE = json.dumps({"title": "Looms", "price": 10, "currency": "USD"})


def creator_properties(name: str) -> str:
    return json.dumps({"email": f"{name}@example.test", "username": name, "displayName": name.title(), "role": "org_user"})


async def test_things_create_get_query_update_archive_delete_restore(one: Cli) -> None:
    created = (await one("things", "create", "course", "Beekeeping 101", "--json",
                         "-p", '{"title": "Beekeeping 101", "price": 10, "currency": "USD"}')).json()
    course = created["id"]
    from_body = (await one("things", "create", "--json", "--json-body",
                           '{"type": "course", "name": "Honey", "properties": {"title": "Honey", "price": 3, "currency": "USD"}}')).json()
    assert from_body["name"] == "Honey" and from_body["properties"]["price"] == 3

    got = (await one("things", "get", course)).ok()
    assert course in got and "Beekeeping 101" in got
    assert (await one("things", "get", course, "--json")).json()["thing"]["version"] == 1

    found = (await one("things", "query", "--type", "course", "--where", "price:gt:5", "--json")).json()
    assert [t["id"] for t in found["things"]] == [course]
    table = (await one("things", "query", "--type", "course")).ok()
    assert course in table and from_body["id"] in table  # full ids, at 80 columns

    updated = (await one("things", "update", course, "--name", "Beekeeping 102", "-p", '{"price": 12}', "--json")).json()
    assert updated["name"] == "Beekeeping 102" and updated["properties"]["price"] == 12 and updated["version"] == 2
    assert (await one("things", "archive", course, "--json")).json()["status"] == "archived"
    assert (await one("things", "delete", course, "--json")).json()["deleted_at"] is not None
    assert (await one("things", "restore", course, "--json")).json()["deleted_at"] is None


async def test_things_refusals_are_one_line_with_the_code(one: Cli) -> None:
    one_line_error(await one("things", "create", "spaceship", "Apollo"), 6, "unknown_ontology_type")
    one_line_error(await one("things", "create", "course", "X", "-p", "{bad"), 2, "--properties", "not valid JSON")
    one_line_error(await one("things", "get", MISSING), 5, "not_found")
    one_line_error(await one("things", "query", "--where", "price:around:5"), 2, "--where")
    one_line_error(await one("things", "update", MISSING, "--name", "x"), 5, "not_found")
    one_line_error(await one("things", "update", MISSING), 2, "nothing to change")
    for verb in ("archive", "delete", "restore", "neighbours"):
        ran = await one("things", verb, MISSING)
        assert ran.code in (0, 5), ran  # neighbours of an unknown thing may be empty
        if verb != "neighbours":
            one_line_error(ran, 5, "not_found")


async def test_connections_and_neighbours(one: Cli) -> None:
    creator = (await one("things", "create", "creator", "Ada", "-p", creator_properties("ada"), "--json")).json()["id"]
    course = (await one("things", "create", "course", "Looms", "-p", COURSE, "--json")).json()["id"]
    made = (await one("connections", "create", creator, course, "owns", "-m", '{"revenueShare": 1.0}', "--json")).json()
    assert (made["from_id"], made["to_id"], made["type"]) == (creator, course, "owns")

    listed = (await one("connections", "list", creator, "--json")).json()
    assert [c["id"] for c in listed["connections"]] == [made["id"]]
    assert made["id"] in (await one("connections", "list", creator)).ok()
    near = (await one("things", "neighbours", creator, "--json")).json()
    assert [n["thing"]["id"] for n in near["neighbors"]] == [course]
    assert course in (await one("things", "neighbours", creator)).ok()
    related = (await one("things", "get", creator, "--include", "owns", "--json")).json()["related"]
    assert [r["thing"]["id"] for r in related] == [course]

    updated = (await one("connections", "update", made["id"], "--strength", "0.5", "--json")).json()
    assert updated["strength"] == 0.5 and updated["metadata"] == {"revenueShare": 1.0}
    assert (await one("connections", "end", made["id"], "--json")).json()["valid_to"] is not None
    assert UUID((await one("connections", "delete", made["id"], "--json")).json()["id"]) == UUID(made["id"])


async def test_connection_refusals(one: Cli) -> None:
    thing = (await one("things", "create", "creator", "Solo", "-p", creator_properties("solo"), "--json")).json()["id"]
    one_line_error(await one("connections", "create", thing, MISSING, "owns"), 5, "not_found")
    one_line_error(await one("connections", "create", thing), 2, "from, to and type")
    one_line_error(await one("connections", "update", MISSING, "--strength", "0.1"), 5, "not_found")
    one_line_error(await one("connections", "end", MISSING), 5, "not_found")
    one_line_error(await one("connections", "delete", MISSING), 5, "not_found")
    listed = await one("connections", "list", MISSING, "--json")
    assert listed.code in (0, 5), listed
    assert json.loads(listed.out)["connections"] == [] if listed.code == 0 else True
