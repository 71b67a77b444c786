"""`tenancy.key.act_in_org`: a platform owner's key acts in another org, logged there; any other key is refused."""

import asyncio

import pytest

from shared.contracts.eventlog import QUERY
from shared.contracts.tenancy import ACT_IN_ORG
from shared.kernel.errors import Forbidden, NotFound, Unauthenticated
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, create_org


async def test_a_platform_owner_acts_in_another_org_and_it_is_logged_there(bus: BusClient, platform: Account) -> None:
    target = await create_org(bus, platform)
    verified = await bus.request(ACT_IN_ORG, {"key": platform.key, "org_id": target.org_id})
    assert (verified.org_id, verified.actor_id, verified.role) == (target.org_id, platform.person_id, "platform_owner")

    async def logged() -> list:
        page = await bus.request(QUERY, {"types": ["dashboard_viewed"], "actor_id": str(platform.person_id)}, target.ctx)
        return [e for e in page.events if e.metadata.get("operation") == "key.act_in_org"]

    for _ in range(100):  # the event reaches the log through the outbox
        if found := await logged():
            break
        await asyncio.sleep(0.1)
    [event] = found
    assert event.metadata["crossOrgAccess"] is True and event.metadata["actorOrgId"] == str(platform.org_id)


async def test_an_org_owner_s_key_is_refused_for_another_org(bus: BusClient, platform: Account) -> None:
    owner, other = await create_org(bus, platform), await create_org(bus, platform)
    with pytest.raises(Forbidden, match="only a platform owner"):
        await bus.request(ACT_IN_ORG, {"key": owner.key, "org_id": other.org_id})
    with pytest.raises(Forbidden):
        await bus.request(ACT_IN_ORG, {"key": owner.key, "org_id": owner.org_id})  # not even its own: no use for it


async def test_a_garbage_key_or_an_unknown_org_is_refused(bus: BusClient, platform: Account) -> None:
    target = await create_org(bus, platform)
    with pytest.raises(Unauthenticated):
        await bus.request(ACT_IN_ORG, {"key": "one_garbage", "org_id": target.org_id})
    with pytest.raises(NotFound):
        await bus.request(ACT_IN_ORG, {"key": platform.key, "org_id": uuid7()})
