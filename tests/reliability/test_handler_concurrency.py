"""A subscriber has at most `handler_concurrency` requests waiting at once; eager handlers that answer at once need no slot."""

import asyncio

import pytest

from shared.kernel.envelope import AuthContext, Payload, register_message
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceRuntime
from tests.polling import until
from tests.probe.app import serve_router


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
    return await serve_router(router, settings, handler_concurrency=2)


async def test_requests_past_the_limit_wait_their_turn(migrated: Settings, bus: BusClient, org: AuthContext) -> None:
    router, gauge = ServiceRouter("probe"), Gauge()

    @router.handler(NAP, transactional=False)
    async def nap(ctx: WorkContext, payload: Nap) -> Nap:
        await gauge.nap(payload.seconds)
        return payload

    runtime = await running(router, migrated)
    try:
        answers = await asyncio.gather(*(bus.request(NAP, {"seconds": 0.2}, org, timeout=30) for _ in range(8)))
    finally:
        await runtime.stop()
    assert answers == [Nap(seconds=0.2)] * 8 and gauge.most == 2


async def test_eager_handlers_answer_at_once_and_those_that_wait_keep_the_limit(
    migrated: Settings, bus: BusClient, org: AuthContext
) -> None:
    router, gauge, release = ServiceRouter("probe"), Gauge(), asyncio.Event()

    @router.handler(NAP_EAGERLY, transactional=False, eager=True)
    async def nap(ctx: WorkContext, payload: Nap) -> Nap:
        if payload.seconds:  # waits until the test lets it go
            gauge.now += 1
            gauge.most = max(gauge.most, gauge.now)
            try:
                await release.wait()
            finally:
                gauge.now -= 1
        return payload

    runtime = await running(router, migrated)
    try:
        first = asyncio.create_task(bus.request(NAP_EAGERLY, {"seconds": 1}, org, timeout=30))
        await until(lambda: gauge.now == 1, timeout=30)  # generous: other suites' background work may share the loop
        fast = await asyncio.gather(*(bus.request(NAP_EAGERLY, {"seconds": 0}, org, timeout=30) for _ in range(50)))
        more = [asyncio.create_task(bus.request(NAP_EAGERLY, {"seconds": 1}, org, timeout=30)) for _ in range(3)]
        await until(lambda: gauge.now == 2, timeout=30)
        await asyncio.sleep(0.2)
        assert gauge.now == 2  # the other two wait for a slot
        stopping = asyncio.create_task(runtime.stop())  # stops taking requests; those received still finish
        await asyncio.sleep(0.1)
        release.set()
        answers = await asyncio.gather(first, *more)
        await stopping
    except BaseException:
        release.set()
        await runtime.stop()
        raise
    assert fast == [Nap(seconds=0)] * 50 and answers == [Nap(seconds=1)] * 4 and gauge.most == 2
