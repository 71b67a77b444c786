"""`one orgs|members|invites|roles|policies|keys|quotas|rate-limits` against the real stack: happy path, one refusal each."""

import pytest

from tests.cli.conftest import Cli, one_line_error
from tests.tenancy.conftest import Account, unique

pytestmark = pytest.mark.timeout(900)  # each command is a process of its own; the machine is shared
MISSING = "00000000-0000-7000-8000-000000000000"


async def test_orgs(one: Cli, platform: Account, owner: Account) -> None:
    org = str(owner.org_id)
    assert org in (await one("orgs", "get")).ok()
    renamed = (await one("orgs", "update", "--name", "Renamed", "--settings", '{"allow_signups": true}', "--json")).json()
    assert renamed["name"] == "Renamed" and renamed["settings"]["allow_signups"] is True
    one_line_error(await one("orgs", "update"), 2, "nothing to change")
    one_line_error(await one("orgs", "get", str(platform.org_id)), 4, "forbidden")  # not a platform owner

    as_platform = one.as_(platform)
    slug = unique("cli")
    created = (await as_platform("orgs", "create", "CLI Org", slug, "--owner-email", f"boss@{slug}.test", "--json")).json()
    assert created["organization"]["slug"] == slug and created["owner_key"].startswith("one_")
    listed = (await as_platform("orgs", "list", "--limit", "1000", "--json")).json()
    assert created["organization"]["id"] in [o["id"] for o in listed["organizations"]]
    assert org in (await as_platform("orgs", "list", "--limit", "1000")).ok()
    one_line_error(await one("orgs", "create", "Nope", unique("nope")), 4, "forbidden")


async def test_invites_and_members(one: Cli, owner: Account) -> None:
    email = f"{unique('new')}@example.test"
    issued = (await one("invites", "create", email, "--json")).json()
    assert issued["delivery"] == "token" and issued["token"]
    assert email in (await one("invites", "list")).ok()
    one_line_error(await one("invites", "create", "not-an-email"), 6, "invalid")

    joined = (await one.as_(None)("invites", "accept", issued["token"], "--display-name", "Newcomer", "--json")).json()
    person = joined["person"]["id"]
    assert joined["organization"]["id"] == str(owner.org_id) and joined["api_key"].startswith("one_")
    one_line_error(await one.as_(None)("invites", "accept", issued["token"]), 6, "invite")  # used once already

    members = (await one("members", "list", "--json")).json()["members"]
    assert person in [m["person_id"] for m in members]
    assert person in (await one("members", "list")).ok()
    assert (await one("members", "role", person, "org_owner", "--json")).json()["role"] == "org_owner"
    one_line_error(await one("members", "role", MISSING, "org_user"), 5, "not_found")
    removed = (await one("members", "remove", person, "--json")).json()
    assert removed["person_id"] == person and len(removed["revoked_keys"]) == 1
    one_line_error(await one("members", "remove", MISSING), 5, "not_found")


async def test_roles_and_policies(one: Cli) -> None:
    role = (await one("roles", "create", "editor", "--description", "Edits things", "--policy", "things:read",
                      "--json")).json()
    assert role["name"] == "editor" and [(p["resource"], p["action"]) for p in role["policies"]] == [("things", "read")]
    assert "editor" in (await one("roles", "list")).ok()
    one_line_error(await one("roles", "create", "Bad Name"), 6, "invalid")
    one_line_error(await one("roles", "create", "x1", "--policy", "things"), 2, "--policy")

    added = (await one("policies", "add", "editor", "things", "update", "--json")).json()
    listed = (await one("policies", "list", "--role", "editor", "--json")).json()
    assert added["id"] in [p["id"] for p in listed]
    assert added["id"] in (await one("policies", "list", "--role", "editor")).ok()
    assert (await one("policies", "remove", added["id"], "--json")).json()["policy_id"] == added["id"]
    one_line_error(await one("policies", "remove", MISSING), 5, "not_found")
    one_line_error(await one("policies", "add", "nosuchrole", "things", "read"), 5, "not_found")
    one_line_error(await one("policies", "add", "platform_owner", "things", "read"), 4, "forbidden")


async def test_keys(one: Cli) -> None:
    issued = (await one("keys", "create", "ci", "--scope", "things:read", "--json")).json()
    key_id = issued["info"]["key_id"]
    assert issued["key"].startswith("one_") and issued["info"]["scopes"] == ["things:read"]
    assert key_id in (await one("keys", "list")).ok()
    assert key_id in [k["key_id"] for k in (await one("keys", "list", "--all", "--json")).json()["keys"]]
    assert (await one("keys", "revoke", key_id, "--json")).json()["revoked_at"] is not None
    one_line_error(await one("keys", "revoke", "000000000000"), 5, "not_found")
    one_line_error(await one.as_(None)("keys", "list"), 3, "ONE_API_KEY")  # no key: nothing connects
    garbage = await one("keys", "list", ONE_API_KEY="one_live_000000000000_garbage")
    one_line_error(garbage, 3, "unauthenticated")


async def test_quotas_and_rate_limits(one: Cli, platform: Account, owner: Account) -> None:
    quota = (await one.as_(platform)("quotas", "set", "things", "500", "--org", str(owner.org_id), "--json")).json()
    assert (quota["metric"], quota["limit"]) == ("things", 500)
    assert "things" in [q["metric"] for q in (await one("quotas", "list", "--json")).json()["quotas"]]
    assert "500" in (await one("quotas", "list")).ok()
    one_line_error(await one("quotas", "set", "things", "10", "--org", str(platform.org_id)), 4, "forbidden")

    rule = (await one("rate-limits", "set", "operation", "100", "60", "--operation", "graph.*", "--json")).json()
    assert (rule["scope"], rule["max_calls"], rule["window_seconds"]) == ("operation", 100, 60)
    assert "graph.*" in (await one("rate-limits", "list")).ok()
    one_line_error(await one("rate-limits", "set", "galaxy", "1", "1"), 6, "invalid")
