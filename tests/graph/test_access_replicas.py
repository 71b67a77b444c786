"""A rule change reaches every graph replica at once: two real replicas share the bus's queue group, both
cache the org's rules (masks, scopes, type schemas), and the next reads and creates, wherever they land, apply
the change."""

from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from services.graph import access
from shared.contracts.graph import THING_GET, InvalidProperties
from shared.contracts.graph.access import MASK_REMOVE, MASK_SET
from shared.contracts.graph.schemas import TYPE_SCHEMA_REMOVE, TYPE_SCHEMA_SET
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


async def test_a_type_schema_set_or_removed_holds_on_every_replica_at_once(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], second_graph: ServiceRuntime
) -> None:
    """Creates read the org's type schemas from the same cache, so a schema set must be dropped everywhere too."""
    caches = [access.cache_of(services["graph"]), access.cache_of(second_graph)]
    for n in range(200):  # creates on both replicas: both cache the org's rules and schemas (none)
        await make_thing(bus, owner.ctx, "lesson", f"warm-up {n}")
        if all(cache.holds(owner.org_id) for cache in caches):
            break
    else:
        pytest.fail("the creates never reached both replicas")
    schema = {"type": "object", "properties": {"mood": {"enum": ["calm"]}}}
    await bus.request(TYPE_SCHEMA_SET, {"type": "blog_post", "properties_schema": schema, "source": "pack:test"},
                      owner.ctx)
    for n in range(20):  # wherever each lands, the schema holds
        with pytest.raises(InvalidProperties):
            await make_thing(bus, owner.ctx, "blog_post", f"wild {n}", properties={"mood": "wild"})
    removal = await bus.request(TYPE_SCHEMA_REMOVE, {"type": "blog_post", "source": "pack:test"}, owner.ctx)
    assert removal.outcome == "removed"  # no blog post was let through
    for n in range(20):
        await make_thing(bus, owner.ctx, "blog_post", f"wild again {n}", properties={"mood": "wild"})
