"""Tenancy over real HTTP: orgs, people, members, keys, roles and policies, quotas, rate limits, email
verification and two-factor, each route reaching tenancy and answering its typed reply or a problem."""

import asyncio
import base64
import time
from typing import Any

import httpx

from services.tenancy import totp
from shared.runtime.client import BusClient
from tests.gateway.conftest import KEY_CACHE_TTL, Caller, assert_problem, caller_for
from tests.tenancy.conftest import Account, Mailbox, account, mailbox, unique  # noqa: F401 (fixtures)


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def invite(owner: Caller, role: str = "org_user", **fields: Any) -> dict[str, Any]:
    """A new email invited over HTTP; the reply carries the token."""
    email = f"{unique('m')}@example.test"
    issued = await ok(await owner.call("POST", f"/v1/orgs/{owner.account.org_id}/invites",
                                       {"email": email, "role": role, **fields}), 201)
    assert issued["delivery"] == "token" and issued["invite"]["email"] == email and issued["token"]
    return issued


async def join(gateway: str, bus: BusClient, owner: Caller, http: httpx.AsyncClient, role: str = "org_user") -> Caller:
    """Invite over HTTP and accept with no key, as the invitee would: the new member, over HTTP."""
    issued = await invite(owner, role)
    joined = await ok(await http.post("/v1/invites/accept", json={"token": issued["token"], "display_name": "New"}), 201)
    assert joined["membership"]["role"] == role and joined["organization"]["id"] == str(owner.account.org_id)
    return await caller_for(gateway, await account(bus, joined["api_key"]))


def assert_401(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


class TestOrganizations:
    async def test_get_and_update_own_org(self, alice: Caller) -> None:
        path = f"/v1/orgs/{alice.account.org_id}"
        org = await ok(await alice.call("GET", path))
        assert org["id"] == str(alice.account.org_id)
        patched = await ok(await alice.call("PATCH", path, {"name": "Renamed", "settings": {"allow_signups": True}}))
        assert patched["name"] == "Renamed" and patched["settings"]["allow_signups"] is True
        assert patched["slug"] == org["slug"]  # only what was sent changes
        assert_problem(await alice.call("PATCH", path, {"plan": "enterprise"}), 403)  # platform owners only
        assert_problem(await alice.call("PATCH", path, {"name": ""}), 422, "invalid")

    async def test_the_platform_creates_and_lists_orgs(self, gateway: str, bus: BusClient, platform: Account,
                                                       alice: Caller) -> None:
        slug = unique("http")
        operator = await caller_for(gateway, platform)
        async with operator.http:
            created = await ok(await operator.call("POST", "/v1/orgs", {
                "name": "Over HTTP", "slug": slug, "owner": {"email": f"boss@{slug}.test", "display_name": "Boss"},
            }), 201)
            org_id = created["organization"]["id"]
            assert (await ok(await operator.call("GET", f"/v1/orgs/{org_id}")))["slug"] == slug
            listed = await ok(await operator.call("GET", "/v1/orgs", limit=1000))
            assert org_id in {o["id"] for o in listed["organizations"]}
            assert_problem(await operator.call("POST", "/v1/orgs", {"name": "Again", "slug": slug}), 409)
        boss = await caller_for(gateway, await account(bus, created["owner_key"]))
        async with boss.http:
            assert (await ok(await boss.call("GET", "/v1/me")))["email"] == f"boss@{slug}.test"
        assert_problem(await alice.call("GET", "/v1/orgs"), 403)
        assert_problem(await alice.call("POST", "/v1/orgs", {"name": "Mine", "slug": unique("mine")}), 403)


class TestPeople:
    async def test_me_and_profile(self, alice: Caller) -> None:
        me = await ok(await alice.call("GET", "/v1/me"))
        assert me["id"] == str(alice.account.person_id) and str(alice.account.org_id) in me["organizations"]
        updated = await ok(await alice.call("PATCH", "/v1/me", {"display_name": "Alice", "bio": "keeps bees"}))
        assert (updated["display_name"], updated["bio"], updated["email"]) == ("Alice", "keeps bees", me["email"])
        assert_problem(await alice.call("PATCH", "/v1/me", {"role": "platform_owner"}), 422, "invalid")

    async def test_signup_is_open_only_where_the_org_allows_it(self, gateway: str, bus: BusClient, alice: Caller,
                                                               http: httpx.AsyncClient) -> None:
        slug = (await ok(await alice.call("GET", f"/v1/orgs/{alice.account.org_id}")))["slug"]
        body = {"email": f"{unique('s')}@example.test", "display_name": "Walk-in", "join": slug}
        assert_problem(await http.post("/v1/signup", json=body), 403)
        await ok(await alice.call("PATCH", f"/v1/orgs/{alice.account.org_id}", {"settings": {"allow_signups": True}}))
        joined = await ok(await http.post("/v1/signup", json=body), 201)
        assert joined["membership"]["role"] == "customer"
        walk_in = await caller_for(gateway, await account(bus, joined["api_key"]))
        async with walk_in.http:
            assert (await ok(await walk_in.call("GET", "/v1/me")))["email"] == body["email"]
        assert_problem(await http.post("/v1/signup", json=body), 409)  # once per email
        assert_problem(await http.post("/v1/signup", json={**body, "email": "not-an-email"}), 422, "invalid")

    async def test_email_verification(self, alice: Caller, http: httpx.AsyncClient, mailbox: Mailbox) -> None:  # noqa: F811
        email = (await ok(await alice.call("GET", "/v1/me")))["email"]
        before = mailbox.count_for(email)
        sent = await ok(await alice.call("POST", "/v1/me/email-verification"), 202)
        assert sent["email"] == email and "token" not in sent
        token = (await mailbox.next_for(email, after=before))["token"]
        assert_problem(await http.post("/v1/email-verification/confirm", json={"token": token[:-2] + "xx"}), 422,
                       "verification_invalid")
        verified = await ok(await http.post("/v1/email-verification/confirm", json={"token": token}))
        assert verified["person_id"] == str(alice.account.person_id)
        assert (await ok(await alice.call("GET", "/v1/me")))["email_verified_at"] is not None


class TestTwoFactor:
    async def test_enroll_confirm_disable(self, alice: Caller) -> None:
        enrollment = await ok(await alice.call("POST", "/v1/me/two-factor"), 201)
        assert enrollment["otpauth_uri"].startswith("otpauth://")
        secret = base64.b32decode(enrollment["secret"] + "=" * (-len(enrollment["secret"]) % 8))
        assert_problem(await alice.call("POST", "/v1/me/two-factor/confirm", {"code": "abc"}), 422, "invalid")
        enabled = await ok(await alice.call("POST", "/v1/me/two-factor/confirm", {"code": totp.totp(secret, time.time())}))
        assert len(enabled["backup_codes"]) > 1
        disabled = await ok(await alice.call("POST", "/v1/me/two-factor/disable", {"code": enabled["backup_codes"][0]}))
        assert disabled == {"person_id": str(alice.account.person_id), "used_backup_code": True}

    async def test_an_owner_resets_a_members_two_factor(self, gateway: str, bus: BusClient, alice: Caller,
                                                       http: httpx.AsyncClient) -> None:
        member = await join(gateway, bus, alice, http)
        async with member.http:
            await ok(await member.call("POST", "/v1/me/two-factor"), 201)
        done = await ok(await alice.call("DELETE", f"/v1/orgs/{alice.account.org_id}/members/"
                                         f"{member.account.person_id}/two-factor"))
        assert done["person_id"] == str(member.account.person_id) and done["was_enabled"] is False


class TestMembers:
    async def test_invite_accept_list_change_role_remove(self, gateway: str, bus: BusClient, alice: Caller,
                                                         http: httpx.AsyncClient) -> None:
        members = f"/v1/orgs/{alice.account.org_id}/members"
        pending = await invite(alice)
        listed = await ok(await alice.call("GET", members))
        assert pending["invite"]["id"] in {i["id"] for i in listed["pending_invites"]}

        member = await join(gateway, bus, alice, http)
        async with member.http:
            path = f"{members}/{member.account.person_id}"
            assert (await ok(await member.call("GET", "/v1/me")))["id"] == str(member.account.person_id)
            listed = await ok(await alice.call("GET", members))
            assert {m["person_id"]: m["role"] for m in listed["members"]}[str(member.account.person_id)] == "org_user"

            changed = await ok(await alice.call("PATCH", path, {"role": "customer", "permissions": ["reports:read"]}))
            assert (changed["role"], changed["permissions"]) == ("customer", ["reports:read"])
            assert_problem(await member.call("PATCH", f"{members}/{alice.account.person_id}", {"role": "customer"}), 403)

            removed = await ok(await alice.call("DELETE", path))
            assert removed["person_id"] == str(member.account.person_id) and removed["revoked_keys"]
            await asyncio.sleep(KEY_CACHE_TTL + 0.2)
            assert_401(await member.call("GET", "/v1/me"))
        assert_problem(await alice.call("DELETE", path), 404)
        assert_problem(await alice.call("DELETE", f"{members}/{alice.account.person_id}"), 409, "last_owner")

    async def test_an_invitation_works_once(self, alice: Caller, http: httpx.AsyncClient) -> None:
        token = (await invite(alice))["token"]
        await ok(await http.post("/v1/invites/accept", json={"token": token}), 201)
        assert_problem(await http.post("/v1/invites/accept", json={"token": token}), 422, "invite_invalid")
        assert_problem(await http.post("/v1/invites/accept", json={"token": "short"}), 422, "invalid")
        assert_401(await http.post("/v1/invites/accept", json={"token": token}, headers={"X-API-Key": "nope"}))


class TestKeys:
    async def test_create_use_list_revoke(self, gateway: str, bus: BusClient, alice: Caller) -> None:
        issued = await ok(await alice.call("POST", "/v1/keys", {"name": "ci", "scopes": ["things:read", "people:*"]}), 201)
        key_id = issued["info"]["key_id"]
        holder = await caller_for(gateway, Account(issued["key"], alice.account.ctx, alice.account.org_id,
                                                   alice.account.person_id))
        async with holder.http:
            assert (await ok(await holder.call("GET", "/v1/me")))["id"] == str(alice.account.person_id)
            listed = await ok(await alice.call("GET", "/v1/keys"))
            assert key_id in {k["key_id"] for k in listed["keys"]} and issued["key"] not in str(listed)
            assert (await ok(await alice.call("GET", "/v1/keys", everyone="true")))["keys"]

            revoked = await ok(await alice.call("DELETE", f"/v1/keys/{key_id}"))
            assert revoked["key_id"] == key_id and revoked["revoked_at"] is not None
            await asyncio.sleep(KEY_CACHE_TTL + 0.2)
            assert_401(await holder.call("GET", "/v1/me"))
        assert (await alice.call("GET", "/v1/me")).status_code == 200
        assert_problem(await alice.call("DELETE", "/v1/keys/000000000000"), 404)
        assert_problem(await alice.call("DELETE", "/v1/keys/not-a-key"), 422, "invalid")


class TestRolesAndPolicies:
    async def test_a_deny_policy_refuses_until_removed(self, gateway: str, bus: BusClient, alice: Caller,
                                                       http: httpx.AsyncClient) -> None:
        member = await join(gateway, bus, alice, http)
        async with member.http:
            await ok(await member.call("POST", "/v1/keys", {"name": "allowed"}), 201)
            policy = await ok(await alice.call("POST", "/v1/roles/org_user/policies", {
                "resource": "keys", "action": "create", "effect": "deny", "priority": 1000}), 201)
            roles = await ok(await alice.call("GET", "/v1/roles"))
            user_role = next(r for r in roles["roles"] if r["name"] == "org_user")
            assert policy["id"] in {p["id"] for p in user_role["policies"]}

            assert_problem(await member.call("POST", "/v1/keys", {"name": "denied"}), 403)
            assert_problem(await member.call("POST", "/v1/roles/org_user/policies",
                                             {"resource": "keys", "action": "create"}), 403)
            assert_problem(await member.call("DELETE", f"/v1/policies/{policy['id']}"), 403)

            assert (await ok(await alice.call("DELETE", f"/v1/policies/{policy['id']}"))) == {"policy_id": policy["id"]}
            await ok(await member.call("POST", "/v1/keys", {"name": "allowed again"}), 201)
        assert_problem(await alice.call("DELETE", f"/v1/policies/{policy['id']}"), 404)

    async def test_create_a_role(self, alice: Caller) -> None:
        role = await ok(await alice.call("POST", "/v1/roles", {
            "name": "auditor", "description": "reads reports", "policies": [{"resource": "reports", "action": "read"}]}), 201)
        assert role["name"] == "auditor" and [(p["resource"], p["action"]) for p in role["policies"]] == [("reports", "read")]
        assert "auditor" in {r["name"] for r in (await ok(await alice.call("GET", "/v1/roles")))["roles"]}
        assert_problem(await alice.call("POST", "/v1/roles", {"name": "auditor"}), 409)
        assert_problem(await alice.call("POST", "/v1/roles", {"name": "Bad Name"}), 422, "invalid")
        assert_problem(await alice.call("POST", "/v1/roles/Bad-Role/policies", {"resource": "reports", "action": "read"}),
                       422, "invalid")


class TestQuotasAndRateLimits:
    async def test_usage_and_limits(self, alice: Caller) -> None:
        quotas = f"/v1/orgs/{alice.account.org_id}/quotas"
        await ok(await alice.call("GET", quotas))
        quota = await ok(await alice.call("PUT", f"{quotas}/exports", {"limit": 7, "resets_monthly": True}))
        assert (quota["metric"], quota["limit"]) == ("exports", 7)
        assert {"exports": 7}.items() <= {q["metric"]: q["limit"] for q in (await ok(await alice.call("GET", quotas)))["quotas"]}.items()
        assert_problem(await alice.call("PUT", f"{quotas}/exports", {"limit": -1}), 422, "invalid")

    async def test_rate_limit_rules(self, alice: Caller) -> None:
        rule = await ok(await alice.call("PUT", f"/v1/orgs/{alice.account.org_id}/rate-limits",
                                         {"scope": "operation", "operation": "things.create", "max_calls": 50,
                                          "window_seconds": 60}))
        assert (rule["scope"], rule["operation"], rule["max_calls"]) == ("operation", "things.create", 50)
        rules = (await ok(await alice.call("GET", "/v1/rate-limits")))["rules"]
        assert any(r["operation"] == "things.create" and r["max_calls"] == 50 for r in rules)
        assert_problem(await alice.call("PUT", f"/v1/orgs/{alice.account.org_id}/rate-limits",
                                        {"scope": "galaxy", "max_calls": 1, "window_seconds": 1}), 422, "invalid")


async def test_tenancy_routes_need_a_key_except_the_open_ones(http: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/v1/me"), ("GET", "/v1/keys"), ("POST", "/v1/keys"), ("GET", "/v1/roles"),
                         ("GET", "/v1/rate-limits"), ("GET", "/v1/orgs"), ("POST", "/v1/me/two-factor")):
        assert_401(await http.request(method, path))
