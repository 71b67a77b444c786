"""Every mutation of tenancy logs its event: the type, who did it, to what, in which org, and what changed."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.tenancy.models import role_id
from shared.contracts.tenancy import (
    KEY_CREATE,
    KEY_REVOKE,
    MEMBER_INVITE,
    MEMBER_ROLE,
    PERSON_UPDATE,
    POLICY_ADD,
    POLICY_REMOVE,
    QUOTA_SET,
    RATE_SET,
    ROLE_CREATE,
    ROLE_LIST,
)
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, add_member, events_of

pytestmark = pytest.mark.usefixtures("services")


@dataclass
class Logged:
    """The one event a mutation must have logged (`metadata`: the keys that must be there, with these values)."""

    type: str
    actor: Account
    target_id: UUID
    target_type: str
    metadata: dict[str, Any]


@dataclass
class Org:
    """A fresh org with an owner and an `org_user` member; `mark` forgets the events logged so far."""

    bus: BusClient
    admin: asyncpg.Connection
    owner: Account
    member: Account
    seen: frozenset[str] = frozenset()

    async def mark(self) -> None:
        self.seen = frozenset(e["id"] for e in await events_of(self.admin, self.owner.org_id))

    async def logged_since_mark(self) -> list[dict[str, Any]]:
        return [e for e in await events_of(self.admin, self.owner.org_id) if e["id"] not in self.seen]


async def invite(org: Org) -> Logged:
    await org.bus.request(MEMBER_INVITE, {"email": "guest@example.test", "role": "customer"}, org.owner.ctx)
    return Logged("user_invited_to_org", org.owner, org.owner.org_id, "organization",
                  {"email": "guest@example.test", "role": "customer"})


async def change_role(org: Org) -> Logged:
    await org.bus.request(MEMBER_ROLE, {"person_id": str(org.member.person_id), "role": "customer"}, org.owner.ctx)
    return Logged("entity_updated", org.owner, org.member.person_id, "member_of",
                  {"connection": "member_of", "from": "org_user", "to": "customer"})


async def create_key(org: Org) -> Logged:
    issued = await org.bus.request(KEY_CREATE, {"name": "ci", "scopes": ["things:read"]}, org.owner.ctx)
    return Logged("entity_created", org.owner, org.owner.person_id, "api_key",
                  {"keyId": issued.info.key_id, "name": "ci", "scopes": ["things:read"]})


async def revoke_key(org: Org) -> Logged:
    key_id = org.member.key.split("_")[2]
    await org.bus.request(KEY_REVOKE, {"key_id": key_id}, org.owner.ctx)
    return Logged("entity_updated", org.owner, org.member.person_id, "api_key", {"keyId": key_id, "action": "revoked"})


async def create_role(org: Org) -> Logged:
    policy = {"resource": "things", "action": "*", "effect": "allow", "priority": 0}
    created = await org.bus.request(ROLE_CREATE, {"name": "editor", "policies": [policy]}, org.owner.ctx)
    listed = {r.name: r.id for r in (await org.bus.request(ROLE_LIST, {}, org.owner.ctx)).roles}
    assert created.id == listed["editor"] == role_id(org.owner.org_id, "editor")
    return Logged("entity_created", org.owner, created.id, "role", {"role": "editor", "policies": [policy]})


async def add_policy(org: Org) -> Logged:
    added = await org.bus.request(POLICY_ADD, {"role": "org_user", "resource": "reports", "action": "export"}, org.owner.ctx)
    return Logged("entity_updated", org.owner, role_id(org.owner.org_id, "org_user"), "role", {
        "role": "org_user",
        "policyAdded": {"id": str(added.id), "role": "org_user", "resource": "reports", "action": "export",
                        "effect": "allow", "priority": 0},
    })


async def remove_policy(org: Org) -> Logged:
    added = await org.bus.request(POLICY_ADD, {"role": "customer", "resource": "reports", "action": "read"}, org.owner.ctx)
    await org.mark()
    await org.bus.request(POLICY_REMOVE, {"policy_id": str(added.id)}, org.owner.ctx)
    return Logged("entity_updated", org.owner, role_id(org.owner.org_id, "customer"), "role",
                  {"role": "customer", "policyRemoved": str(added.id)})


async def set_quota_limit(org: Org) -> Logged:
    await org.bus.request(QUOTA_SET, {"metric": "exports", "limit": 7}, org.owner.ctx)
    return Logged("organization_updated", org.owner, org.owner.org_id, "organization", {"changes": {"limits": {"exports": 7}}})


async def set_rate_limit(org: Org) -> Logged:
    await org.bus.request(RATE_SET, {"scope": "org", "max_calls": 50, "window_seconds": 60}, org.owner.ctx)
    rule = {"scope": "org", "operation": "*", "max_calls": 50, "window_seconds": 60}
    return Logged("organization_updated", org.owner, org.owner.org_id, "organization", {"changes": {"rateLimit": rule}})


async def update_profile(org: Org) -> Logged:
    await org.bus.request(PERSON_UPDATE, {"display_name": "Renamed", "bio": "Hello."}, org.member.ctx)
    return Logged("profile_updated", org.member, org.member.person_id, "creator", {"changed": ["bio", "display_name"]})


MUTATIONS: list[Callable[[Org], Awaitable[Logged]]] = [
    invite, change_role, create_key, revoke_key, create_role, add_policy, remove_policy,
    set_quota_limit, set_rate_limit, update_profile,
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__)
async def test_a_mutation_logs_its_event(
    mutation: Callable[[Org], Awaitable[Logged]], bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    org = Org(bus, admin, owner, await add_member(bus, owner))
    await org.mark()
    expected = await mutation(org)
    [event] = [e for e in await org.logged_since_mark() if e["type"] == expected.type]
    assert (event["org_id"], event["actor_id"]) == (str(owner.org_id), str(expected.actor.person_id))
    payload = event["payload"]
    assert (payload["target_id"], payload["target_type"]) == (str(expected.target_id), expected.target_type)
    assert {k: payload["metadata"].get(k) for k in expected.metadata} == expected.metadata
