"""A rule change reaches every graph replica at once: two real replicas share the bus's queue group, both
cache the org's rules, and the next reads, wherever they land, apply the change."""

from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from services.graph import access
from shared.contracts.graph import THING_GET
from shared.contracts.graph.access import MASK_REMOVE, MASK_SET
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.graph.conftest import make_thing
from tests.tenancy.conftest import Account, add_member


@pytest.fixture
async def second_graph(services: dict[str, ServiceRuntime]) -> AsyncIterator[ServiceRuntime]:
    first = services["graph"]
    runtime = ServiceRuntime(first.definition, first.settings)
    await runtime.start(migrate=False)
    yield runtime
    await runtime.stop()


async def _sauce(bus: BusClient, who: Account, thing_id: UUID) -> object:
    return (await bus.request(THING_GET, {"id": str(thing_id)}, who.ctx)).thing.properties.get("sauce")


async def test_a_change_reaches_every_replica_at_once(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], second_graph: ServiceRuntime
) -> None:
    customer = await add_member(bus, owner, role="customer")
    post = (await make_thing(bus, owner.ctx, "blog_post", "Post", properties={"sauce": "secret"})).id
    caches = [access.cache_of(services["graph"]), access.cache_of(second_graph)]
    for _ in range(200):  # until both replicas have read the org's rules (none) and cached them
        assert await _sauce(bus, customer, post) == "secret"
        if all(cache.holds(owner.org_id) for cache in caches):
            break
    else:
        pytest.fail("the reads never reached both replicas")
    rule = await bus.request(MASK_SET, {"role": "customer", "thing_type": "blog_post", "field": "properties.sauce"},
                             owner.ctx)
    for _ in range(20):
        assert await _sauce(bus, customer, post) == "***"
    await bus.request(MASK_REMOVE, {"id": str(rule.id)}, owner.ctx)
    for _ in range(20):
        assert await _sauce(bus, customer, post) == "secret"
