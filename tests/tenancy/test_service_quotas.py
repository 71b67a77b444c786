"""Quotas taken by a service's own identity (role `service:<name>`, its grants as its permissions) in an org it
is not a member of: an agent's tool creating a thing, the agents service giving back a run's unused inference.
Everyone else must still be a member, and a service gets nothing beyond its grants, its org and its metrics."""

from dataclasses import replace
from uuid import uuid4

import asyncpg
import pytest

from shared.contracts.tenancy import (
    ORG_UPDATE,
    QUOTA_CONSUME,
    QUOTA_RELEASE,
    QUOTA_SET,
    QUOTA_USAGE,
    OrganizationNotWritable,
)
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden, QuotaExceeded
from shared.runtime.client import BusClient
from shared.runtime.context import service_identity
from tests.tenancy.conftest import Account, create_org, events_of

pytestmark = pytest.mark.usefixtures("services")

GRANTS = ("things:*", "quotas:consume", "quotas:release")


def agent_of(owner: Account, grants: tuple[str, ...] = GRANTS) -> AuthContext:
    """The agents service acting for one of the org's agents: the agent (a thing id, no member) is the actor."""
    return service_identity("agents", owner.org_id, grants, on_behalf_of=uuid4())


async def used(bus: BusClient, owner: Account, metric: str) -> int:
    return {q.metric: q.used for q in (await bus.request(QUOTA_USAGE, {}, owner.ctx)).quotas}[metric]


async def test_a_service_identity_consumes_and_gives_back_in_its_org(bus: BusClient, owner: Account) -> None:
    await bus.request(QUOTA_SET, {"metric": "things", "limit": 3}, owner.ctx)
    agent = agent_of(owner)
    assert (await bus.request(QUOTA_CONSUME, {"metric": "things", "amount": 2}, agent)).used == 2
    with pytest.raises(QuotaExceeded):
        await bus.request(QUOTA_CONSUME, {"metric": "things", "amount": 2}, agent)
    assert (await bus.request(QUOTA_RELEASE, {"metric": "things"}, agent)).used == 1
    assert await used(bus, owner, "things") == 1


async def test_the_service_gives_back_inference_but_no_other_plan_usage(
    bus: BusClient, platform: Account, owner: Account
) -> None:
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 10}, platform.ctx)
    itself = service_identity("agents", owner.org_id, GRANTS)
    await bus.request(QUOTA_CONSUME, {"metric": "inference", "amount": 4}, itself)
    assert (await bus.request(QUOTA_RELEASE, {"metric": "inference", "amount": 3}, itself)).used == 1
    await bus.request(QUOTA_CONSUME, {"metric": "api_calls", "amount": 2}, owner.ctx)
    for metric in ("api_calls", "users"):  # counted by tenancy itself: a quota manager's decision, not a service's
        with pytest.raises(Forbidden):
            await bus.request(QUOTA_RELEASE, {"metric": metric}, itself)
    without = service_identity("agents", owner.org_id, ("quotas:consume",))  # no `quotas:release` grant
    with pytest.raises(Forbidden):
        await bus.request(QUOTA_RELEASE, {"metric": "inference"}, without)
    assert (await used(bus, owner, "inference"), await used(bus, owner, "api_calls")) == (1, 2)


async def test_a_member_acting_through_a_service_still_needs_a_quota_manager_for_inference(
    bus: BusClient, platform: Account, owner: Account
) -> None:
    """A member's own rights decide for a member, whatever role the envelope says: no release of plan usage."""
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 10}, platform.ctx)
    await bus.request(QUOTA_CONSUME, {"metric": "inference", "amount": 2}, owner.ctx)
    for_owner = service_identity("agents", owner.org_id, GRANTS, on_behalf_of=owner.person_id)
    with pytest.raises(Forbidden):
        await bus.request(QUOTA_RELEASE, {"metric": "inference"}, for_owner)
    assert await used(bus, owner, "inference") == 2


async def test_a_service_identity_needs_the_grant(bus: BusClient, owner: Account) -> None:
    await bus.request(QUOTA_SET, {"metric": "things", "limit": 3}, owner.ctx)
    with pytest.raises(Forbidden):
        await bus.request(QUOTA_CONSUME, {"metric": "things"}, agent_of(owner, ("things:*",)))
    assert await used(bus, owner, "things") == 0


async def test_a_non_member_that_is_no_service_is_refused(bus: BusClient, platform: Account, owner: Account) -> None:
    """A person's context for an org they do not belong to (another org's owner, or an unknown actor) is refused,
    even carrying permissions that would allow it."""
    await bus.request(QUOTA_SET, {"metric": "things", "limit": 3}, owner.ctx)
    other = await create_org(bus, platform)
    strangers = [
        replace(other.ctx, org_id=owner.org_id),
        AuthContext(owner.org_id, uuid4(), "org_owner", owner.ctx.permissions, ()),
    ]
    for stranger in strangers:
        for spec in (QUOTA_CONSUME, QUOTA_RELEASE):
            with pytest.raises(Forbidden):
                await bus.request(spec, {"metric": "things"}, stranger)
    assert await used(bus, owner, "things") == 0


async def test_a_service_identity_gets_nothing_from_an_org_that_may_not_write(
    bus: BusClient, platform: Account, owner: Account
) -> None:
    await bus.request(QUOTA_SET, {"metric": "things", "limit": 3}, owner.ctx)
    await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "status": "suspended"}, platform.ctx)
    for spec in (QUOTA_CONSUME, QUOTA_RELEASE):
        with pytest.raises(OrganizationNotWritable):
            await bus.request(spec, {"metric": "things"}, agent_of(owner))
    assert await used(bus, owner, "things") == 0


async def test_a_service_identity_works_only_in_the_envelopes_org(
    bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
) -> None:
    """Its org is the envelope's: quota usage moves there and nowhere else, and a refusal is logged there."""
    other = await create_org(bus, platform)
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 1}, platform.ctx)
    agent = agent_of(owner)
    await bus.request(QUOTA_CONSUME, {"metric": "inference"}, agent)
    with pytest.raises(QuotaExceeded):
        await bus.request(QUOTA_CONSUME, {"metric": "inference"}, agent)
    assert (await used(bus, owner, "inference"), await used(bus, other, "inference")) == (1, 0)
    [event] = await events_of(admin, owner.org_id, "inference_quota_exceeded")
    assert event["actor_id"] == str(agent.actor_id) and event["payload"]["metadata"]["requested"] == 1
    assert await events_of(admin, other.org_id, "inference_quota_exceeded") == []
