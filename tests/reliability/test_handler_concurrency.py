"""A subscriber has at most `handler_concurrency` requests waiting at once; eager handlers that answer at once need no slot."""

import asyncio

import pytest

from shared.client import BusClient
from shared.envelope import AuthContext, Payload, register_message
from shared.handlers import RequestContext, ServiceRouter
from shared.service import ServiceDefinition, ServiceRuntime
from shared.settings import Settings


class Nap(Payload):
    seconds: float


NAP = register_message("probe.concurrency.nap", "one.probe.concurrency.nap", Nap, Nap)
NAP_EAGERLY = register_message("probe.concurrency.nap_eagerly", "one.probe.concurrency.nap_eagerly", Nap, Nap)

pytestmark = pytest.mark.usefixtures("services")


class Gauge:
    def __init__(self) -> None:
        self.now = self.most = 0

    async def nap(self, seconds: float) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1


async def running(router: ServiceRouter, settings: Settings) -> ServiceRuntime:
    definition = ServiceDefinition(name="probe", version="test", router=router, migrations="tests.probe.migrations")
    runtime = ServiceRuntime(definition, settings.model_copy(update={"handler_concurrency": 2}))
    await runtime.start(migrate=False)
    return runtime


async def test_requests_past_the_limit_wait_their_turn(migrated: Settings, bus: BusClient, org: AuthContext) -> None:
    router, gauge = ServiceRouter("probe"), Gauge()

    @router.handler(NAP, transactional=False)
    async def nap(ctx: RequestContext, payload: Nap) -> Nap:
        await gauge.nap(payload.seconds)
        return payload

    runtime = await running(router, migrated)
    try:
        answers = await asyncio.gather(*(bus.request(NAP, {"seconds": 0.05}, org) for _ in range(8)))
    finally:
        await runtime.stop()
    assert answers == [Nap(seconds=0.05)] * 8 and gauge.most == 2


async def test_eager_answers_need_no_slot_and_waiting_ones_keep_the_limit(
    migrated: Settings, bus: BusClient, org: AuthContext
) -> None:
    router, gauge = ServiceRouter("probe"), Gauge()

    @router.handler(NAP_EAGERLY, transactional=False, eager=True)
    async def nap(ctx: RequestContext, payload: Nap) -> Nap:
        if payload.seconds:
            await gauge.nap(payload.seconds)
        return payload

    runtime = await running(router, migrated)
    try:
        slow = asyncio.create_task(bus.request(NAP_EAGERLY, {"seconds": 0.5}, org))
        await asyncio.sleep(0.1)  # one slot taken by a waiting request, one free
        fast = await asyncio.wait_for(asyncio.gather(*(bus.request(NAP_EAGERLY, {"seconds": 0}, org) for _ in range(50))), 0.4)
        assert not slow.done() and gauge.most == 1
        later = [asyncio.create_task(bus.request(NAP_EAGERLY, {"seconds": 0.05}, org)) for _ in range(4)]
        await asyncio.sleep(0.1)  # received: one is napping, the others wait for the free slot
        await runtime.stop()  # the waiting ones still finish and reply
        answers = await asyncio.gather(slow, *later)
    except BaseException:
        await runtime.stop()
        raise
    assert fast == [Nap(seconds=0)] * 50 and answers == [Nap(seconds=0.5)] + [Nap(seconds=0.05)] * 4
    assert gauge.most == 2
