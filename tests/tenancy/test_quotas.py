"""Quotas: atomic check-and-increment, quota_exceeded, the inference event, usage per org."""

import asyncio

import asyncpg
import pytest

from services.tenancy.schemas import MEMBER_ACCEPT, MEMBER_INVITE, QUOTA_CONSUME, QUOTA_RELEASE, QUOTA_SET, QUOTA_USAGE
from shared.client import BusClient
from shared.errors import Forbidden, NotFound, QuotaExceeded
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
