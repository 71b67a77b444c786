"""Stopping a service lets the requests it already took finish and reply."""

import asyncio

import pytest

from shared.kernel.envelope import AuthContext, Payload, register_message
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime


class Nap(Payload):
    seconds: float


SLOW = register_message("probe.slow", "one.probe.slow", Nap, Nap)


@pytest.mark.usefixtures("services")
async def test_stop_drains_in_flight_requests(migrated: Settings, bus: BusClient, org: AuthContext) -> None:
    router = ServiceRouter("probe")

    @router.handler(SLOW, transactional=False)
    async def nap(ctx: WorkContext, payload: Nap) -> Nap:
        await asyncio.sleep(payload.seconds)
        return payload

    runtime = ServiceRuntime(
        ServiceDefinition(name="probe", version="test", router=router, migrations="tests.probe.migrations"), migrated
    )
    await runtime.start(migrate=False)
    calls = [asyncio.create_task(bus.request(SLOW, {"seconds": 0.3}, org)) for _ in range(5)]
    await asyncio.sleep(0.1)  # all five are being handled now
    await runtime.stop()
    assert await asyncio.gather(*calls) == [Nap(seconds=0.3)] * 5
