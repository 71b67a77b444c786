"""Things and connections over real HTTP: each route reaches the graph and answers its typed reply."""

from uuid import uuid4

from tests.gateway.conftest import Caller, assert_problem, caller_for


async def create(caller: Caller, name: str = "A post", **fields: object) -> dict:
    response = await caller.call("POST", "/v1/things", {"type": "blog_post", "name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


class TestThings:
    async def test_create_get_update_delete_restore(self, alice: Caller) -> None:
        thing = await create(alice, "Bees", properties={"content": "wintering"})
        assert thing["type"] == "blog_post" and thing["status"] == "draft" and thing["version"] == 1
        path = f"/v1/things/{thing['id']}"

        got = await alice.call("GET", path)
        assert got.status_code == 200 and got.json()["thing"] == thing and got.json()["related"] == []

        patched = await alice.call("PATCH", path, {"name": "Bees in winter", "expected_version": 1})
        assert patched.status_code == 200, patched.text
        assert patched.json()["name"] == "Bees in winter" and patched.json()["properties"] == {"content": "wintering"}

        deleted = await alice.call("DELETE", path)
        assert deleted.status_code == 200 and deleted.json()["deleted_at"] is not None
        assert_problem(await alice.call("GET", path), 404)

        restored = await alice.call("POST", f"{path}/restore")
        assert restored.status_code == 200 and restored.json()["deleted_at"] is None
        assert (await alice.call("GET", path)).status_code == 200

    async def test_a_stale_version_is_a_409_problem(self, alice: Caller) -> None:
        thing = await create(alice)
        await alice.call("PATCH", f"/v1/things/{thing['id']}", {"name": "v2"})
        stale = await alice.call("PATCH", f"/v1/things/{thing['id']}", {"name": "v3", "expected_version": 1})
        assert_problem(stale, 409, "version_conflict")

    async def test_list_with_filters(self, alice: Caller) -> None:
        bees = await create(alice, "Bees", properties={"content": "bees"}, status="active")
        await create(alice, "Ants", properties={"content": "ants"})
        await create(alice, "Wasps", properties={"content": "wasps"}, status="active")

        async def names(**query: object) -> list[str]:
            response = await alice.call("GET", "/v1/things", **query)
            assert response.status_code == 200, response.text
            return sorted(t["name"] for t in response.json()["things"])

        assert await names() == ["Ants", "Bees", "Wasps"]
        assert await names(status="active") == ["Bees", "Wasps"]
        assert await names(where='content:eq:"bees"') == ["Bees"]
        assert await names(where=["content:ne:bees", "content:ne:ants"]) == ["Wasps"]
        assert await names(type="creator") == []
        first = await alice.call("GET", "/v1/things", limit=2)
        assert len(first.json()["things"]) == 2 and first.json()["next_cursor"]
        await alice.call("DELETE", f"/v1/things/{bees['id']}")
        assert await names(include_deleted="true") == ["Ants", "Bees", "Wasps"]
        assert await names() == ["Ants", "Wasps"]

    async def test_the_key_may_come_as_x_api_key(self, gateway: str, alice: Caller) -> None:
        other = await caller_for(gateway, alice.account, header="x-api-key")
        async with other.http:
            assert (await other.call("GET", "/v1/things")).status_code == 200


class TestConnections:
    async def test_create_list_delete(self, alice: Caller) -> None:
        post, other = await create(alice, "Post"), await create(alice, "Other")
        created = await alice.call("POST", "/v1/connections",
                                   {"from_id": post["id"], "to_id": other["id"], "type": "references"})
        assert created.status_code == 201, created.text
        connection = created.json()
        assert (connection["from_id"], connection["to_id"]) == (post["id"], other["id"])

        listed = await alice.call("GET", "/v1/connections", thing_id=post["id"], direction="out")
        assert listed.status_code == 200 and [c["id"] for c in listed.json()["connections"]] == [connection["id"]]
        assert (await alice.call("GET", "/v1/connections", thing_id=post["id"], direction="in")).json()["connections"] == []

        with_related = (await alice.call("GET", f"/v1/things/{post['id']}", include="references")).json()
        assert [r["thing"]["id"] for r in with_related["related"]] == [other["id"]]

        deleted = await alice.call("DELETE", f"/v1/connections/{connection['id']}")
        assert deleted.status_code == 200 and deleted.json() == {"id": connection["id"]}
        assert (await alice.call("GET", "/v1/connections", thing_id=post["id"])).json()["connections"] == []
        assert_problem(await alice.call("DELETE", f"/v1/connections/{connection['id']}"), 404)

    async def test_linking_an_unknown_thing_is_a_404(self, alice: Caller) -> None:
        post = await create(alice)
        response = await alice.call("POST", "/v1/connections", {"from_id": post["id"], "to_id": str(uuid4()), "type": "references"})
        assert_problem(response, 404)


class TestGraphShapes:
    """Batch create, archive, neighbours, and a connection's update and end: the rest of the graph's verbs."""

    async def test_batch_archive_neighbors_update_and_end(self, alice: Caller) -> None:
        batch = await alice.call("POST", "/v1/things/batch", {"things": [
            {"type": "blog_post", "name": "Hive"}, {"type": "blog_post", "name": "Queen"},
        ]})
        assert batch.status_code == 201, batch.text
        hive, queen = batch.json()["things"]
        link = await alice.call("POST", "/v1/connections", {"from_id": hive["id"], "to_id": queen["id"], "type": "references"})
        assert link.status_code == 201, link.text
        connection = link.json()

        near = await alice.call("GET", f"/v1/things/{hive['id']}/neighbors", depth=1, direction="out")
        assert near.status_code == 200, near.text
        assert [(n["thing"]["id"], n["depth"]) for n in near.json()["neighbors"]] == [(queen["id"], 1)]
        assert_problem(await alice.call("GET", f"/v1/things/{hive['id']}/neighbors", depth=99), 422)

        patched = await alice.call("PATCH", f"/v1/connections/{connection['id']}", {"strength": 0.5, "metadata": {"why": "cited"}})
        assert patched.status_code == 200, patched.text
        assert patched.json()["strength"] == 0.5 and patched.json()["metadata"]["why"] == "cited"
        ended = await alice.call("POST", f"/v1/connections/{connection['id']}/end", {})
        assert ended.status_code == 200 and ended.json()["valid_to"] is not None, ended.text

        archived = await alice.call("POST", f"/v1/things/{hive['id']}/archive")
        assert archived.status_code == 200 and archived.json()["status"] == "archived", archived.text
        assert_problem(await alice.call("POST", f"/v1/things/{uuid4()}/archive"), 404)
