"""Organizations: creation, plans and limits, settings, status enforcement, signup, listing."""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.contracts.graph import THING_CREATE
from shared.contracts.tenancy import (
    KEY_CREATE,
    MEMBER_INVITE,
    ORG_CREATE,
    ORG_GET,
    ORG_LIST,
    ORG_UPDATE,
    SIGNUP,
    VERIFY_KEY,
    OrganizationNotWritable,
    SignupClosed,
)
from shared.kernel.errors import Conflict, Forbidden, InvalidRequest
from shared.kernel.rbac import check
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, account, create_org, events_of, unique

pytestmark = pytest.mark.usefixtures("services")


class TestCreate:
    async def test_platform_owner_creates_an_org_with_its_plan_limits_and_an_owner(
        self, bus: BusClient, platform: Account, admin: asyncpg.Connection
    ) -> None:
        slug = unique("acme")
        created = await bus.request(ORG_CREATE, {
            "name": "Acme", "slug": slug, "domain": f"{slug}.example", "plan": "pro",
            "billing": {"customer_id": "cus_1"}, "settings": {"allow_signups": True},
            "owner": {"email": f"Boss@{slug}.example ", "display_name": "Boss"},
        }, platform.ctx)
        org = created.organization
        assert (org.slug, org.plan, org.status, org.domain) == (slug, "pro", "active", f"{slug}.example")
        assert org.limits.model_dump() == {"users": 50, "storage": 100, "api_calls": 100_000, "inference": 10_000}
        assert org.usage.users == 1 and org.billing.customer_id == "cus_1" and org.settings.allow_signups
        assert created.owner.email == f"boss@{slug}.example"  # normalised
        types = [e["type"] for e in await events_of(admin, org.id)]
        assert types[:1] == ["organization_created"] and {"user_registered", "user_joined_org"} <= set(types)
        owner = await account(bus, created.owner_key)
        assert owner.ctx.role == "org_owner" and owner.org_id == org.id

    async def test_an_org_owner_cannot_create_organizations(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(Forbidden, match="platform owner"):
            await bus.request(ORG_CREATE, {"name": "X", "slug": unique("x")}, owner.ctx)

    async def test_slugs_are_unique(self, bus: BusClient, platform: Account) -> None:
        slug = unique("dup")
        await bus.request(ORG_CREATE, {"name": "One", "slug": slug}, platform.ctx)
        with pytest.raises(Conflict):
            await bus.request(ORG_CREATE, {"name": "Two", "slug": slug}, platform.ctx)

    async def test_a_malformed_slug_is_invalid(self, bus: BusClient, platform: Account) -> None:
        with pytest.raises(InvalidRequest):
            await bus.request(ORG_CREATE, {"name": "Bad", "slug": "Not A Slug"}, platform.ctx)


class TestUpdate:
    async def test_owner_updates_settings_and_the_change_is_logged(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        org = await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True, "allowed_domains": ["acme.test"]}}, owner.ctx)
        assert org.settings.enable_two_factor and org.settings.allowed_domains == ["acme.test"]
        assert not org.settings.allow_signups  # untouched
        [event] = await events_of(admin, owner.org_id, "settings_updated")
        assert event["actor_id"] == str(owner.person_id)
        assert event["payload"]["metadata"]["changes"] == {"enable_two_factor": True, "allowed_domains": ["acme.test"]}

    async def test_only_a_platform_owner_changes_plan_or_status(self, bus: BusClient, owner: Account) -> None:
        for change in ({"plan": "enterprise"}, {"status": "active"}, {"billing": {"customer_id": "free"}}):
            with pytest.raises(Forbidden, match="platform owner"):
                await bus.request(ORG_UPDATE, change, owner.ctx)

    async def test_only_a_platform_owner_changes_when_a_trial_ends_or_what_happens_then(
        self, bus: BusClient, platform: Account, admin: asyncpg.Connection
    ) -> None:
        ends = datetime.now(UTC) + timedelta(days=1)
        owner = await create_org(bus, platform, status="trial", trial_ends_at=ends.isoformat())
        later = ends + timedelta(days=365)
        for change in ({"settings": {"on_trial_end": "continue"}}, {"settings": {"on_trial_end": "read_only"}},
                       {"trial_ends_at": later.isoformat()}):
            with pytest.raises(Forbidden, match="only a platform owner changes") as refused:
                await bus.request(ORG_UPDATE, change, owner.ctx)
            assert refused.value.code == "forbidden"
        org = await bus.request(ORG_GET, {}, owner.ctx)
        assert (org.settings.on_trial_end, org.trial_ends_at) == ("read_only", ends)
        assert await events_of(admin, owner.org_id, "settings_updated") == []

        change = {"org_id": str(owner.org_id), "settings": {"on_trial_end": "continue"}, "trial_ends_at": later.isoformat()}
        org = await bus.request(ORG_UPDATE, change, platform.ctx)
        assert (org.settings.on_trial_end, org.trial_ends_at) == ("continue", later)
        [event] = await events_of(admin, owner.org_id, "settings_updated")
        assert event["actor_id"] == str(platform.person_id) and event["payload"]["metadata"]["changes"] == {"on_trial_end": "continue"}

    async def test_a_plan_change_resets_the_limits_and_keeps_usage(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
    ) -> None:
        org = await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "plan": "enterprise"}, platform.ctx)
        assert org.plan == "enterprise" and org.limits.users == 1_000 and org.usage.users == 1
        [event] = await events_of(admin, owner.org_id, "organization_updated")
        assert event["actor_id"] == str(platform.person_id) and event["payload"]["metadata"]["changes"] == {"plan": "enterprise"}

    async def test_a_platform_owner_lists_every_org_and_the_listing_is_logged(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
    ) -> None:
        listed = await bus.request(ORG_LIST, {"limit": 1000}, platform.ctx)
        assert owner.org_id in {o.id for o in listed.organizations}
        [*_, event] = await events_of(admin, platform.org_id, "dashboard_viewed")
        assert event["payload"]["metadata"]["operation"] == "organization.list"

    async def test_an_org_owner_cannot_list_organizations(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(Forbidden):
            await bus.request(ORG_LIST, {}, owner.ctx)


class TestStatus:
    async def test_a_suspended_org_can_read_but_its_writes_are_refused_clearly(
        self, bus: BusClient, platform: Account, owner: Account
    ) -> None:
        await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "status": "suspended"}, platform.ctx)
        assert (await bus.request(ORG_GET, {}, owner.ctx)).status == "suspended"  # reads still work
        with pytest.raises(OrganizationNotWritable, match="is suspended: it can read but not write") as refused:
            await bus.request(MEMBER_INVITE, {"email": "new@example.test"}, owner.ctx)
        assert isinstance(refused.value, Forbidden) and refused.value.code == "org_not_writable"
        with pytest.raises(OrganizationNotWritable):
            await bus.request(ORG_UPDATE, {"name": "Renamed"}, owner.ctx)
        verified = await bus.request(VERIFY_KEY, {"key": owner.key})
        assert not verified.writable and verified.org_status == "suspended"
        auth = verified.auth_context()
        assert check(auth, "things", "read").allowed and not check(auth, "things", "create").allowed

    async def test_a_cancelled_org_can_read_but_its_writes_are_refused(
        self, bus: BusClient, platform: Account, owner: Account
    ) -> None:
        await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "status": "cancelled"}, platform.ctx)
        assert (await bus.request(ORG_GET, {}, owner.ctx)).status == "cancelled"
        with pytest.raises(OrganizationNotWritable, match="is cancelled: it can read but not write"):
            await bus.request(MEMBER_INVITE, {"email": "new@example.test"}, owner.ctx)
        with pytest.raises(OrganizationNotWritable):
            await bus.request(KEY_CREATE, {"name": "more"}, owner.ctx)
        owner = await account(bus, owner.key)  # what the edge stamps now: a read-only key
        assert not check(owner.ctx, "things", "create").allowed and check(owner.ctx, "things", "read").allowed
        with pytest.raises(Forbidden):  # so other services refuse its writes too
            await bus.request(THING_CREATE, {"type": "blog_post", "name": "Too late"}, owner.ctx)

    async def test_a_platform_owner_can_reactivate_a_suspended_org(
        self, bus: BusClient, platform: Account, owner: Account
    ) -> None:
        await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "status": "cancelled"}, platform.ctx)
        await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "status": "active"}, platform.ctx)
        assert (await bus.request(ORG_UPDATE, {"name": "Back"}, owner.ctx)).name == "Back"

    async def test_a_trial_past_its_end_is_read_only_unless_its_settings_say_continue(
        self, bus: BusClient, platform: Account
    ) -> None:
        ended = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        owner = await create_org(bus, platform, status="trial", trial_ends_at=ended)
        with pytest.raises(OrganizationNotWritable, match="trial"):
            await bus.request(MEMBER_INVITE, {"email": "a@example.test"}, owner.ctx)
        await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "settings": {"on_trial_end": "continue"}}, platform.ctx)
        owner = await account(bus, owner.key)  # the edge verifies every request; the key is writable again
        await bus.request(MEMBER_INVITE, {"email": "a@example.test"}, owner.ctx)


class TestSignup:
    async def test_signup_creates_a_trial_org_only_when_the_platform_allows_it(
        self, bus: BusClient, platform: Account
    ) -> None:
        body = {"email": f"{unique('founder')}@example.test", "display_name": "Founder",
                "organization": {"name": "Startup", "slug": unique("startup")}}
        with pytest.raises(SignupClosed):
            await bus.request(SIGNUP, body)
        await bus.request(ORG_UPDATE, {"settings": {"allow_signups": True}}, platform.ctx)
        try:
            joined = await bus.request(SIGNUP, body)
            with pytest.raises(Conflict):  # an existing email cannot sign up again: that would take the account over
                await bus.request(SIGNUP, {**body, "organization": {"name": "Again", "slug": unique("again")}})
        finally:
            await bus.request(ORG_UPDATE, {"settings": {"allow_signups": False}}, platform.ctx)
        assert joined.organization.status == "trial" and joined.organization.trial_ends_at is not None
        assert joined.membership.role == "org_owner"
        assert (await account(bus, joined.api_key)).ctx.role == "org_owner"

    async def test_signup_joins_an_org_that_allows_it_from_an_allowed_domain(self, bus: BusClient, owner: Account) -> None:
        org = await bus.request(ORG_GET, {}, owner.ctx)
        body = {"email": f"{unique('fan')}@fans.test", "display_name": "Fan", "join": org.slug}
        with pytest.raises(SignupClosed):
            await bus.request(SIGNUP, body)
        await bus.request(ORG_UPDATE, {"settings": {"allow_signups": True, "allowed_domains": ["fans.test"]}}, owner.ctx)
        joined = await bus.request(SIGNUP, body)
        assert joined.membership.role == "customer" and joined.organization.id == owner.org_id
        with pytest.raises(Forbidden, match="not an allowed email domain"):
            await bus.request(SIGNUP, {**body, "email": "someone@elsewhere.test"})
