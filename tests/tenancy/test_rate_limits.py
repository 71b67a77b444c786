"""Rate limits: per org, per operation and per key windows, counted atomically on the database clock, with a retry-after."""

import asyncio
import time

import pytest

from shared.contracts.tenancy import KEY_CREATE, RATE_HIT, RATE_LIST, RATE_SET
from shared.kernel.api_keys import parse_api_key
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden, RateLimited
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, add_member, create_org

pytestmark = pytest.mark.usefixtures("services")


async def test_an_operation_over_its_limit_is_rate_limited_with_a_retry_after(bus: BusClient, owner: Account) -> None:
    await bus.request(RATE_SET, {"scope": "operation", "operation": "things.create", "max_calls": 3, "window_seconds": 60}, owner.ctx)
    for left in (2, 1, 0):
        assert (await bus.request(RATE_HIT, {"operation": "things.create"}, owner.ctx)).remaining == left
    with pytest.raises(RateLimited) as limited:
        await bus.request(RATE_HIT, {"operation": "things.create"}, owner.ctx)
    assert 0 < limited.value.retry_after <= 60 and limited.value.details["scope"] == "operation"
    await bus.request(RATE_HIT, {"operation": "things.read"}, owner.ctx)  # other operations are unaffected


async def test_concurrent_calls_never_pass_the_org_limit(bus: BusClient, owner: Account) -> None:
    await bus.request(RATE_SET, {"scope": "org", "max_calls": 5, "window_seconds": 60}, owner.ctx)
    results = await asyncio.gather(
        *(bus.request(RATE_HIT, {"operation": "anything"}, owner.ctx) for _ in range(25)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, RateLimited) for r in results if isinstance(r, BaseException))


async def test_the_key_limit_counts_each_key_apart(bus: BusClient, owner: Account) -> None:
    await bus.request(RATE_SET, {"scope": "key", "max_calls": 1, "window_seconds": 60}, owner.ctx)
    first = parse_api_key(owner.key).key_id
    second = (await bus.request(KEY_CREATE, {"name": "second"}, owner.ctx)).info.key_id
    await bus.request(RATE_HIT, {"operation": "x", "key_id": first}, owner.ctx)
    await bus.request(RATE_HIT, {"operation": "x", "key_id": second}, owner.ctx)
    with pytest.raises(RateLimited):
        await bus.request(RATE_HIT, {"operation": "x", "key_id": first}, owner.ctx)
    rules = (await bus.request(RATE_LIST, {}, owner.ctx)).rules
    assert [(r.scope, r.max_calls) for r in rules] == [("key", 1)]


async def test_a_member_cannot_spend_another_members_key_window(bus: BusClient, owner: Account) -> None:
    await bus.request(RATE_SET, {"scope": "key", "max_calls": 1, "window_seconds": 60}, owner.ctx)
    user = await add_member(bus, owner)
    owners_key = parse_api_key(owner.key).key_id
    for key_id in (owners_key, "0123456789ab"):  # someone else's key, a key that does not exist
        with pytest.raises(Forbidden):
            await bus.request(RATE_HIT, {"operation": "x", "key_id": key_id}, user.ctx)
    assert (await bus.request(RATE_HIT, {"operation": "x", "key_id": owners_key}, owner.ctx)).remaining == 0


async def test_a_refused_call_costs_no_other_window(bus: BusClient, owner: Account) -> None:
    await bus.request(RATE_SET, {"scope": "org", "max_calls": 3, "window_seconds": 60}, owner.ctx)
    await bus.request(RATE_SET, {"scope": "operation", "operation": "hot", "max_calls": 1, "window_seconds": 60}, owner.ctx)
    await bus.request(RATE_HIT, {"operation": "hot"}, owner.ctx)
    for _ in range(3):
        with pytest.raises(RateLimited):
            await bus.request(RATE_HIT, {"operation": "hot"}, owner.ctx)
    assert (await bus.request(RATE_HIT, {"operation": "cold"}, owner.ctx)).remaining == 1


async def test_members_cannot_change_rate_limits(bus: BusClient, owner: Account) -> None:
    user = await add_member(bus, owner)
    with pytest.raises(Forbidden):
        await bus.request(RATE_SET, {"scope": "org", "max_calls": 10**6, "window_seconds": 1}, user.ctx)


async def test_replicas_with_skewed_clocks_share_the_database_window(
    bus: BusClient, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service runs in this process: moving its clock by hours (a badly skewed replica) changes nothing."""
    await bus.request(RATE_SET, {"scope": "operation", "operation": "export", "max_calls": 3, "window_seconds": 3600}, owner.ctx)
    real = time.time
    assert (await bus.request(RATE_HIT, {"operation": "export"}, owner.ctx)).remaining == 2
    monkeypatch.setattr(time, "time", lambda: real() + 7 * 3600)
    assert (await bus.request(RATE_HIT, {"operation": "export"}, owner.ctx)).remaining == 1
    monkeypatch.setattr(time, "time", lambda: real() - 5 * 3600)
    last = await bus.request(RATE_HIT, {"operation": "export"}, owner.ctx)
    assert last.remaining == 0 and 0 < last.reset_after <= 3600
    with pytest.raises(RateLimited) as limited:
        await bus.request(RATE_HIT, {"operation": "export"}, owner.ctx)
    monkeypatch.undo()
    assert abs(limited.value.retry_after - last.reset_after) < 5  # the same window's end, from the database


async def test_a_hit_counts_only_for_a_member_of_the_envelopes_org(
    bus: BusClient, platform: Account, owner: Account
) -> None:
    other = await create_org(bus, platform)
    await bus.request(RATE_SET, {"scope": "org", "max_calls": 1, "window_seconds": 3600}, other.ctx)
    forged = AuthContext(other.org_id, owner.person_id, "org_owner", owner.ctx.permissions)
    for _ in range(3):
        with pytest.raises(Forbidden, match="not a member"):
            await bus.request(RATE_HIT, {"operation": "anything"}, forged)
    assert (await bus.request(RATE_HIT, {"operation": "anything"}, other.ctx)).remaining == 0  # nothing was spent
