"""RBAC: built-in roles, org policies, deny over allow, and the same decision locally and over the bus."""

import pytest

from shared.contracts.tenancy import POLICY_ADD, POLICY_REMOVE, RBAC_CHECK, ROLE_CREATE, ROLE_LIST, VERIFY_KEY
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden
from shared.kernel.ids import uuid7
from shared.kernel.rbac import BUILTIN_POLICIES, Effect, Policy, check, decide, read_only_scopes, require, scope_allows
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, account, add_member

pytestmark = pytest.mark.usefixtures("services")


class TestDecisionRule:
    def test_deny_overrides_allow_at_the_same_priority(self) -> None:
        policies = [Policy("things", "*"), Policy("things", "delete", Effect.DENY)]
        assert decide(policies, "things", "create").allowed
        assert not decide(policies, "things", "delete").allowed

    def test_the_highest_priority_tier_decides(self) -> None:
        policies = [Policy("*", "*", Effect.DENY, 0), Policy("things", "read", Effect.ALLOW, 10)]
        assert decide(policies, "things", "read").allowed
        assert not decide(policies, "things", "create").allowed

    def test_nothing_matching_is_a_deny(self) -> None:
        assert not decide([], "things", "read").allowed

    def test_the_four_built_in_roles_exist(self) -> None:
        assert set(BUILTIN_POLICIES) == {"platform_owner", "org_owner", "org_user", "customer"}

    def test_scopes_narrow_and_read_only_keeps_reads(self) -> None:
        assert scope_allows([], "x", "delete") and not scope_allows(["x:read"], "x", "delete")
        assert read_only_scopes(["things:*", "keys:create"]) == ("things:list", "things:read")
        assert read_only_scopes(["keys:create"]) == ("none:none",)

    def test_policies_survive_the_envelope_encoding(self) -> None:
        policy = Policy("knowledge.*", "search", Effect.DENY, -5)
        assert Policy.decode(policy.encode()) == policy

    def test_a_remembered_decision_is_the_one_for_those_very_permissions_and_scopes(self) -> None:
        """`check` memoises by (permissions, scopes, resource, action): each part changes the answer."""
        org, actor = uuid7(), uuid7()
        allow = (Policy("things", "*").encode(),)
        deny = (*allow, Policy("things", "delete", Effect.DENY).encode())
        for _ in range(2):  # the second round answers from memory
            assert check(AuthContext(org, actor, "r", allow), "things", "delete").allowed
            assert not check(AuthContext(org, actor, "r", deny), "things", "delete").allowed
            assert check(AuthContext(org, actor, "r", list(deny)), "things", "create").allowed  # a list works too
            assert not check(AuthContext(org, actor, "r", allow, ("things:read",)), "things", "delete").allowed
            assert not check(AuthContext(org, actor, "r", ("allow:things",)), "things", "read").allowed  # malformed


async def test_built_in_roles_are_predefined_in_every_org(bus: BusClient, owner: Account) -> None:
    roles = {r.name: r for r in (await bus.request(ROLE_LIST, {}, owner.ctx)).roles}
    assert {"platform_owner", "org_owner", "org_user", "customer"} <= set(roles)
    assert all(r.builtin for r in roles.values())


async def test_a_deny_policy_beats_an_allow(bus: BusClient, owner: Account) -> None:
    user = await add_member(bus, owner)
    assert (await bus.request(RBAC_CHECK, {"resource": "things", "action": "delete"}, user.ctx)).allowed
    added = await bus.request(POLICY_ADD, {"role": "org_user", "resource": "things", "action": "delete", "effect": "deny"}, owner.ctx)
    result = await bus.request(RBAC_CHECK, {"resource": "things", "action": "delete"}, user.ctx)
    assert not result.allowed and "deny:things:delete:0" in result.reason
    assert (await bus.request(RBAC_CHECK, {"resource": "things", "action": "create"}, user.ctx)).allowed
    auth = (await account(bus, user.key)).ctx  # the verified key carries the new policy at once
    assert not check(auth, "things", "delete").allowed and check(auth, "things", "create").allowed
    with pytest.raises(Forbidden, match="deny:things:delete"):
        require(auth, "things", "delete")
    await bus.request(POLICY_REMOVE, {"policy_id": str(added.id)}, owner.ctx)
    assert (await bus.request(RBAC_CHECK, {"resource": "things", "action": "delete"}, user.ctx)).allowed


async def test_a_custom_role_grants_only_its_policies(bus: BusClient, owner: Account) -> None:
    role = await bus.request(ROLE_CREATE, {"name": "editor", "policies": [
        {"resource": "things", "action": "*"}, {"resource": "things", "action": "delete", "effect": "deny"},
    ]}, owner.ctx)
    assert [p.effect for p in role.policies] == ["allow", "deny"]
    editor = await add_member(bus, owner, role="editor")
    assert editor.ctx.role == "editor"
    for action, allowed in (("update", True), ("delete", False)):
        assert (await bus.request(RBAC_CHECK, {"resource": "things", "action": action}, editor.ctx)).allowed is allowed
        assert check(editor.ctx, "things", action).allowed is allowed
    assert not check(editor.ctx, "members", "invite").allowed


async def test_an_owner_checks_another_member_but_a_member_cannot(bus: BusClient, owner: Account) -> None:
    customer = await add_member(bus, owner, role="customer")
    result = await bus.request(RBAC_CHECK, {"resource": "members", "action": "invite", "person_id": str(customer.person_id)}, owner.ctx)
    assert not result.allowed and result.role == "customer"
    with pytest.raises(Forbidden):
        await bus.request(RBAC_CHECK, {"resource": "x", "action": "read", "person_id": str(owner.person_id)}, customer.ctx)


async def test_members_cannot_change_policies(bus: BusClient, owner: Account) -> None:
    user = await add_member(bus, owner)
    with pytest.raises(Forbidden):
        await bus.request(POLICY_ADD, {"role": "org_user", "resource": "*", "action": "*"}, user.ctx)
    with pytest.raises(Forbidden):
        await bus.request(POLICY_ADD, {"role": "platform_owner", "resource": "*", "action": "*"}, owner.ctx)
    assert (await bus.request(VERIFY_KEY, {"key": user.key})).role == "org_user"
