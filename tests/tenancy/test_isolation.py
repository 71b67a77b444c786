"""Isolation: a key of org A reads and changes nothing of org B; a platform owner may, and is logged."""

import asyncpg
import pytest
from sqlalchemy import text

from shared.contracts.tenancy import (
    KEY_REVOKE,
    MEMBER_INVITE,
    MEMBER_LIST,
    MEMBER_REMOVE,
    MEMBER_ROLE,
    ORG_GET,
    ORG_UPDATE,
    QUOTA_SET,
    QUOTA_USAGE,
    RATE_SET,
    RBAC_CHECK,
)
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden, NotFound
from shared.runtime.client import BusClient
from shared.runtime.db import Database
from tests.tenancy.conftest import Account, add_member, create_org, events_of

pytestmark = pytest.mark.usefixtures("services")


async def test_a_key_from_one_org_can_read_or_change_nothing_of_another(
    bus: BusClient, platform: Account, owner: Account
) -> None:
    other = await create_org(bus, platform)
    victim = await add_member(bus, other)
    b = str(other.org_id)
    attempts = [
        (ORG_GET, {"org_id": b}),
        (MEMBER_LIST, {"org_id": b}),
        (QUOTA_USAGE, {"org_id": b}),
        (ORG_UPDATE, {"org_id": b, "settings": {"allow_signups": True}}),
        (MEMBER_INVITE, {"org_id": b, "email": "spy@example.test", "role": "org_owner"}),
        (MEMBER_ROLE, {"org_id": b, "person_id": str(victim.person_id), "role": "customer"}),
        (MEMBER_REMOVE, {"org_id": b, "person_id": str(victim.person_id)}),
        (QUOTA_SET, {"org_id": b, "metric": "exports", "limit": 1}),
        (RATE_SET, {"org_id": b, "scope": "org", "max_calls": 1, "window_seconds": 1}),
    ]
    for spec, payload in attempts:
        with pytest.raises(Forbidden, match="another organization"):
            await bus.request(spec, payload, owner.ctx)
    with pytest.raises(NotFound):  # B's key is not in A
        await bus.request(KEY_REVOKE, {"key_id": victim.key.split("_")[2]}, owner.ctx)
    with pytest.raises(NotFound):  # nor is B's member
        await bus.request(MEMBER_ROLE, {"person_id": str(victim.person_id), "role": "customer"}, owner.ctx)
    with pytest.raises(NotFound):
        await bus.request(RBAC_CHECK, {"resource": "x", "action": "read", "person_id": str(victim.person_id)}, owner.ctx)
    members = await bus.request(MEMBER_LIST, {}, other.ctx)
    assert {m.role for m in members.members} == {"org_owner", "org_user"}  # nothing changed in B
    assert not (await bus.request(ORG_GET, {}, other.ctx)).settings.allow_signups


async def test_an_envelope_claiming_another_org_is_refused(bus: BusClient, platform: Account, owner: Account) -> None:
    other = await create_org(bus, platform)
    forged = AuthContext(other.org_id, owner.person_id, "org_owner", owner.ctx.permissions)
    with pytest.raises(Forbidden, match="not a member"):
        await bus.request(MEMBER_LIST, {}, forged)
    with pytest.raises(Forbidden, match="not a member"):
        await bus.request(MEMBER_INVITE, {"email": "spy@example.test"}, forged)


async def test_a_platform_owner_works_across_orgs_and_each_access_is_logged(
    bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
) -> None:
    org = await bus.request(ORG_GET, {"org_id": str(owner.org_id)}, platform.ctx)
    assert org.id == owner.org_id
    members = await bus.request(MEMBER_LIST, {"org_id": str(owner.org_id)}, platform.ctx)
    assert [m.person_id for m in members.members] == [owner.person_id]
    logged = await events_of(admin, owner.org_id, "dashboard_viewed")
    assert [e["payload"]["metadata"]["operation"] for e in logged] == ["organization.get", "member.list"]
    assert all(e["actor_id"] == str(platform.person_id) and e["payload"]["metadata"]["crossOrgAccess"] for e in logged)


async def test_row_level_security_confines_a_query_that_forgets_its_org(
    bus: BusClient, platform: Account, owner: Account, app_db: Database
) -> None:
    other = await create_org(bus, platform)
    async with app_db.transaction(owner.org_id) as session:
        orgs = (await session.execute(text("SELECT id FROM tenancy.organizations"))).scalars().all()
        people = (await session.execute(text("SELECT id FROM tenancy.people"))).scalars().all()
        keys = (await session.execute(text("SELECT DISTINCT org_id FROM tenancy.api_keys"))).scalars().all()
    assert orgs == [owner.org_id] and people == [owner.person_id] and keys == [owner.org_id]
    async with app_db.transaction() as session:  # no org at all: nothing
        assert (await session.execute(text("SELECT count(*) FROM tenancy.memberships"))).scalar_one() == 0
    with pytest.raises(Exception, match="row-level security"):
        async with app_db.transaction(owner.org_id) as session:
            await session.execute(
                text("INSERT INTO tenancy.quotas (org_id, metric, quota_limit) VALUES (:org, 'sneaky', 1)"),
                {"org": other.org_id},
            )


