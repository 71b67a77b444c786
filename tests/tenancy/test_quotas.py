"""Quotas: atomic check-and-increment, quota_exceeded, the inference event, usage per org."""

import asyncio

import asyncpg
import pytest

from shared.contracts.tenancy import (
    MEMBER_ACCEPT,
    MEMBER_INVITE,
    ORG_GET,
    ORG_UPDATE,
    QUOTA_CONSUME,
    QUOTA_RELEASE,
    QUOTA_SET,
    QUOTA_USAGE,
    OrganizationNotWritable,
    Quota,
)
from shared.kernel.errors import Forbidden, NotFound, QuotaExceeded
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, add_member, events_of

pytestmark = pytest.mark.usefixtures("services")


async def test_concurrent_increments_never_exceed_the_limit(bus: BusClient, owner: Account) -> None:
    await bus.request(QUOTA_SET, {"metric": "exports", "limit": 10}, owner.ctx)
    results = await asyncio.gather(
        *(bus.request(QUOTA_CONSUME, {"metric": "exports"}, owner.ctx) for _ in range(40)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 10
    assert all(isinstance(r, QuotaExceeded) for r in results if isinstance(r, BaseException))
    usage = {q.metric: q for q in (await bus.request(QUOTA_USAGE, {}, owner.ctx)).quotas}
    assert (usage["exports"].used, usage["exports"].limit) == (10, 10)


async def test_an_amount_that_does_not_fit_is_refused_whole(bus: BusClient, owner: Account) -> None:
    await bus.request(QUOTA_SET, {"metric": "storage_gb", "limit": 5}, owner.ctx)
    await bus.request(QUOTA_CONSUME, {"metric": "storage_gb", "amount": 4}, owner.ctx)
    with pytest.raises(QuotaExceeded) as refused:
        await bus.request(QUOTA_CONSUME, {"metric": "storage_gb", "amount": 2}, owner.ctx)
    assert refused.value.details == {"metric": "storage_gb", "limit": 5, "used": 4, "requested": 2}
    assert (await bus.request(QUOTA_RELEASE, {"metric": "storage_gb", "amount": 3}, owner.ctx)).used == 1


async def test_exceeding_the_inference_quota_is_logged(
    bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
) -> None:
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 1}, platform.ctx)
    await bus.request(QUOTA_CONSUME, {"metric": "inference"}, owner.ctx)
    with pytest.raises(QuotaExceeded):
        await bus.request(QUOTA_CONSUME, {"metric": "inference"}, owner.ctx)
    [event] = await events_of(admin, owner.org_id, "inference_quota_exceeded")
    assert event["actor_id"] == str(owner.person_id) and event["payload"]["metadata"]["limit"] == 1


async def test_the_users_quota_limits_who_can_join(bus: BusClient, platform: Account, owner: Account) -> None:
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "users", "limit": 2}, platform.ctx)
    await add_member(bus, owner)
    issued = await bus.request(MEMBER_INVITE, {"email": "third@example.test"}, owner.ctx)
    with pytest.raises(QuotaExceeded, match="users"):
        await bus.request(MEMBER_ACCEPT, {"token": issued.token})


async def test_plan_limits_are_the_platforms_to_change(bus: BusClient, owner: Account) -> None:
    with pytest.raises(Forbidden, match="platform owner"):
        await bus.request(QUOTA_SET, {"metric": "inference", "limit": 10**9}, owner.ctx)


async def test_members_consume_but_do_not_size_quotas(bus: BusClient, owner: Account) -> None:
    user = await add_member(bus, owner)
    with pytest.raises(NotFound):
        await bus.request(QUOTA_CONSUME, {"metric": "nonexistent"}, user.ctx)
    assert (await bus.request(QUOTA_CONSUME, {"metric": "api_calls"}, user.ctx)).used == 1
    with pytest.raises(Forbidden):
        await bus.request(QUOTA_SET, {"metric": "exports", "limit": 5}, user.ctx)


class TestRelease:
    async def test_members_cannot_give_back_usage_tenancy_counts(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        customer, user = await add_member(bus, owner, role="customer"), await add_member(bus, owner)
        await bus.request(QUOTA_CONSUME, {"metric": "inference", "amount": 3}, user.ctx)
        await bus.request(QUOTA_CONSUME, {"metric": "api_calls", "amount": 2}, customer.ctx)
        before = await usage_of(bus, owner)
        for member in (customer, user, owner):  # an org owner neither: plan usage is the platform's
            for metric in ("inference", "api_calls", "users"):
                with pytest.raises(Forbidden, match="platform owner"):
                    await bus.request(QUOTA_RELEASE, {"metric": metric, "amount": 1}, member.ctx)
        assert await usage_of(bus, owner) == before
        assert (before["inference"].used, before["api_calls"].used, before["users"].used) == (3, 2, 3)
        assert await events_of(admin, owner.org_id, "organization_updated") == []

    async def test_a_platform_owner_gives_back_plan_usage(self, bus: BusClient, platform: Account) -> None:
        used = (await bus.request(QUOTA_CONSUME, {"metric": "inference"}, platform.ctx)).used
        assert (await bus.request(QUOTA_RELEASE, {"metric": "inference"}, platform.ctx)).used == used - 1

    async def test_a_service_metric_is_given_back_by_members_but_never_below_zero(
        self, bus: BusClient, owner: Account
    ) -> None:
        user = await add_member(bus, owner, role="customer")
        await bus.request(QUOTA_SET, {"metric": "exports", "limit": 5}, owner.ctx)
        await bus.request(QUOTA_CONSUME, {"metric": "exports", "amount": 2}, user.ctx)
        assert (await bus.request(QUOTA_RELEASE, {"metric": "exports", "amount": 5}, user.ctx)).used == 0

    async def test_an_org_that_may_not_write_gives_nothing_back(
        self, bus: BusClient, platform: Account, owner: Account
    ) -> None:
        await bus.request(QUOTA_SET, {"metric": "exports", "limit": 5}, owner.ctx)
        await bus.request(QUOTA_CONSUME, {"metric": "exports", "amount": 2}, owner.ctx)
        await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "status": "suspended"}, platform.ctx)
        with pytest.raises(OrganizationNotWritable):
            await bus.request(QUOTA_RELEASE, {"metric": "exports"}, owner.ctx)
        assert (await usage_of(bus, owner))["exports"].used == 2


class TestMonthlyReset:
    async def test_last_months_usage_is_not_read_or_given_back_in_a_new_month(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        await bus.request(QUOTA_SET, {"metric": "exports", "limit": 10, "resets_monthly": True}, owner.ctx)
        await bus.request(QUOTA_SET, {"metric": "seats", "limit": 10}, owner.ctx)
        for metric, amount in (("api_calls", 5), ("exports", 4), ("seats", 3)):
            await bus.request(QUOTA_CONSUME, {"metric": metric, "amount": amount}, owner.ctx)
        await admin.execute(  # as if those were used last month
            "UPDATE tenancy.quotas SET period_start = period_start - interval '1 month' WHERE org_id = $1", owner.org_id
        )
        this_month = await admin.fetchval("SELECT date_trunc('month', now())")
        usage = await usage_of(bus, owner)
        assert (usage["api_calls"].used, usage["exports"].used) == (0, 0)
        assert usage["api_calls"].period_start == usage["exports"].period_start == this_month
        assert usage["seats"].used == 3 and usage["seats"].period_start < this_month  # not monthly: kept
        assert (await bus.request(ORG_GET, {}, owner.ctx)).usage.api_calls == 0
        released = await bus.request(QUOTA_RELEASE, {"metric": "exports", "amount": 1}, owner.ctx)
        assert (released.used, released.period_start) == (0, this_month)  # not last month's 4 - 1
        assert (await bus.request(QUOTA_CONSUME, {"metric": "exports", "amount": 10}, owner.ctx)).used == 10


async def usage_of(bus: BusClient, member: Account) -> dict[str, Quota]:
    return {q.metric: q for q in (await bus.request(QUOTA_USAGE, {}, member.ctx)).quotas}
