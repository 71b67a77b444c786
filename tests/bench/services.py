"""The services' side of a bench that needs real orgs: tenancy beside the service measured, in one process."""

import asyncio
from dataclasses import dataclass

from pydantic import SecretStr

from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceDefinition, ServiceRuntime
from tests.bench.rr_processes import settings_for, tracing

BENCH_PEPPER = SecretStr("bench-only-pepper-" + "x" * 32)
"""Set, so nothing is written into a data dir."""


@dataclass
class Platform:
    """A bus on the services' connection, acting as the platform owner (whose API key is `key`)."""

    bus: BusClient
    ctx: AuthContext
    key: str
    runtimes: list[ServiceRuntime]
    """Started here: a bench that runs them in its own process stops them (`stop`) before its loop closes."""

    async def stop(self) -> None:
        await asyncio.gather(*(runtime.stop() for runtime in reversed(self.runtimes)))

    async def new_org_key(self) -> str:
        """A fresh org with an owner; the owner's API key."""
        from shared.contracts.tenancy import ORG_CREATE
        from shared.kernel.ids import uuid7

        slug = f"bench-{uuid7().hex[-10:]}"
        owner = {"email": f"owner@{slug}.test", "display_name": "Owner"}
        return (await self.bus.request(ORG_CREATE, {"name": slug, "slug": slug, "owner": owner}, self.ctx)).owner_key


async def start_with_tenancy(
    name: str, definition: ServiceDefinition | None, nats_url: str, db_url: str, ratio: float, **settings: object
) -> Platform:
    """Tenancy and `definition` (if any, with its own `settings` fields) started, traced at `ratio`; the platform
    bootstrapped."""
    from services.tenancy.app import definition as tenancy_definition
    from services.tenancy.bootstrap import bootstrap_platform
    from shared.contracts.tenancy import VERIFY_KEY

    common = settings_for(nats_url, db_url, ratio)
    tracing(name, common)
    tenancy_settings = tenancy_definition.settings(**common.model_dump(), api_key_pepper=BENCH_PEPPER)
    runtimes = [ServiceRuntime(tenancy_definition, tenancy_settings)]
    if definition is not None:
        runtimes.append(ServiceRuntime(definition, definition.settings(**common.model_dump(), **settings)))
    await asyncio.gather(*(r.start(migrate=False) for r in runtimes))
    bus = BusClient(runtimes[0].broker.connection, timeout=30)
    booted = await bootstrap_platform(runtimes[0].db, tenancy_settings, new_key_if_exists=True)
    return Platform(bus, (await bus.request(VERIFY_KEY, {"key": booted.api_key})).auth_context(), booted.api_key,
                    runtimes)
