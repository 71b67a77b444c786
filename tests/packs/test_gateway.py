"""Packs through the gateway: an owner installs, the pack's roles decide what members may do, other orgs see nothing."""

from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, assert_problem, caller_for
from tests.packs.conftest import COURSE, SESSION, over_http
from tests.tenancy.conftest import add_member


async def test_a_packs_roles_allow_what_its_policies_allow_and_no_more(alice: Caller, bus: BusClient, gateway: str) -> None:
    installed = await over_http(alice, "POST", "/v1/packs", {"name": "tutoring"})
    assert installed.status_code == 200, installed.text
    tutor = await caller_for(gateway, await add_member(bus, alice.account, role="tutor"))
    student = await caller_for(gateway, await add_member(bus, alice.account, role="student"))
    try:
        course = await tutor.call("POST", "/v1/things", {"type": "course", "name": "Algebra", "properties": COURSE})
        assert course.status_code == 201, course.text
        session = await tutor.call("POST", "/v1/things", {"type": "consultation", "name": "1:1", "properties": SESSION})
        assert session.status_code == 201, session.text
        assert_problem(await tutor.call("POST", "/v1/things", {"type": "course", "name": "No subject", "properties": {
            k: v for k, v in COURSE.items() if k != "subject"}}), 422, "invalid_properties")
        patched = await tutor.call("PATCH", f"/v1/things/{course.json()['id']}", {"name": "Algebra I"})
        assert patched.status_code == 200, patched.text
        assert_problem(await tutor.call("DELETE", f"/v1/things/{course.json()['id']}"), 403, "forbidden")
        assert_problem(await tutor.call("POST", "/v1/packs", {"name": "commerce"}), 403, "forbidden")
        assert_problem(await tutor.call("GET", "/v1/packs"), 403, "forbidden")

        read = await student.call("GET", f"/v1/things/{course.json()['id']}")
        assert read.status_code == 200 and read.json()["thing"]["name"] == "Algebra I", read.text
        assert_problem(await student.call("POST", "/v1/things", {"type": "course", "name": "Mine", "properties": COURSE}),
                       403, "forbidden")
        assert_problem(await student.call("PATCH", f"/v1/things/{course.json()['id']}", {"name": "x"}), 403, "forbidden")
        seen = await student.call("GET", f"/v1/things/{session.json()['id']}")
        assert seen.status_code == 200 and "tutorNotes" not in seen.json()["thing"]["properties"], seen.text
        assert "tutorNotes" in (await tutor.call("GET", f"/v1/things/{session.json()['id']}")).json()["thing"]["properties"]
    finally:
        await tutor.http.aclose()
        await student.http.aclose()


async def test_another_orgs_pack_is_out_of_reach(alice: Caller, bob: Caller) -> None:
    assert (await over_http(bob, "POST", "/v1/packs", {"name": "commerce"})).status_code == 200
    assert (await alice.call("GET", "/v1/packs")).json()["installed"] == []
    assert_problem(await alice.call("DELETE", "/v1/packs/commerce"), 404, "pack_not_installed")
    assert [p["name"] for p in (await bob.call("GET", "/v1/packs")).json()["installed"]] == ["commerce"]
    free = await alice.call("POST", "/v1/things", {"type": "product", "name": "Anything", "properties": {}})
    assert free.status_code == 201, "bob's schema for products is bob's alone"
    assert_problem(await bob.call("POST", "/v1/things", {"type": "product", "name": "No SKU", "properties": {}}),
                   422, "invalid_properties")
    assert_problem(await alice.call("POST", "/v1/packs", {"name": "commerce", "org_id": str(bob.account.org_id)}), 422)


async def test_install_refuses_a_malformed_document_as_a_problem(alice: Caller) -> None:
    assert_problem(await alice.call("POST", "/v1/packs", {"name": "tutoring", "document": {"name": "x"}}), 422)
    assert_problem(await alice.call("POST", "/v1/packs", {"document": {
        "name": "odd", "version": "1.0.0", "title": "Odd", "thing_types": [
            {"type": "course", "properties_schema": {"type": "object", "properties": {"x": {"type": "no-such-type"}}}}]}}),
        422)
    assert_problem(await alice.call("DELETE", "/v1/packs/Not_A_Name"), 422)
