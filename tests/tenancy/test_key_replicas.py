"""Two tenancy replicas: a key revoked through one is refused by the other at once, thanks to the broadcast."""

from collections.abc import AsyncIterator

import pytest

from services.tenancy.app import definition
from services.tenancy.service_keys import verify_key
from services.tenancy.state import state_of
from shared.contracts.tenancy import KEY_REVOKE
from shared.kernel.errors import Unauthenticated
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.polling import until
from tests.tenancy.conftest import Account, add_member

pytestmark = pytest.mark.usefixtures("services")

LONG_TTL = 60.0
"""Far longer than the test waits: a replica that drops the key did so because it was told, not because it expired."""


@pytest.fixture
async def replicas(services: dict[str, ServiceRuntime], migrated: Settings, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[list[ServiceRuntime]]:
    """The session's tenancy and a second one in the same queue group, each with its own key cache."""
    second = ServiceRuntime(definition, migrated)
    await second.start(migrate=False)
    try:
        both = [services["tenancy"], second]
        for runtime in both:
            monkeypatch.setattr(state_of(runtime).keys, "ttl", LONG_TTL)
        yield both
    finally:
        await second.stop()


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other_well_within_the_ttl(
    bus: BusClient, owner: Account, replicas: list[ServiceRuntime]
) -> None:
    member = await add_member(bus, owner)
    key_id = member.key.split("_")[2]
    caches = [state_of(r).keys for r in replicas]
    for runtime, cache in zip(replicas, caches):
        assert (await verify_key(cache, runtime.db, member.key)).model.actor_id == member.person_id
        assert cache.cached(key_id) is not None
    assert caches[0] is not caches[1]

    await bus.request(KEY_REVOKE, {"key_id": key_id}, member.ctx)  # one of the two answers it

    await until(lambda: all(cache.cached(key_id) is None for cache in caches), timeout=LONG_TTL / 30)
    for runtime, cache in zip(replicas, caches):
        with pytest.raises(Unauthenticated, match="revoked"):
            await verify_key(cache, runtime.db, member.key)
