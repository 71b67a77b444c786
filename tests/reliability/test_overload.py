"""Past its waiting line a service refuses at once with `unavailable` (reason `overloaded`) instead of letting
callers time out, and it stays healthy: the requests it took are answered, and so is the next one (issue 23)."""

import asyncio

import pytest

from shared.kernel.envelope import AuthContext, Payload, register_message
from shared.kernel.errors import OneError, Unavailable
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from tests.polling import until
from tests.probe.app import serve_router


class Hold(Payload):
    wait: bool


HOLD = register_message("probe.overload.hold", "one.probe.overload.hold", Hold, Hold)

pytestmark = pytest.mark.usefixtures("services")


async def test_a_flood_past_the_line_is_refused_quickly_and_the_service_stays_healthy(
    migrated: Settings, bus: BusClient, org: AuthContext
) -> None:
    router, release, holding = ServiceRouter("probe"), asyncio.Event(), [0]

    @router.handler(HOLD, transactional=False)
    async def hold(ctx: WorkContext, payload: Hold) -> Hold:
        if payload.wait:
            holding[0] += 1
            await release.wait()
        return payload

    runtime = await serve_router(router, migrated, handler_concurrency=2, handler_queue_limit=3)
    try:
        busy = [asyncio.create_task(bus.request(HOLD, {"wait": True}, org, timeout=60)) for _ in range(2)]
        await until(lambda: holding[0] == 2, timeout=30)
        flood = [asyncio.create_task(bus.request(HOLD, {"wait": False}, org, timeout=60)) for _ in range(40)]
        started = asyncio.get_running_loop().time()
        await until(lambda: sum(t.done() for t in flood) >= 37, timeout=30)
        refused_within = asyncio.get_running_loop().time() - started
        release.set()
        answers = await asyncio.gather(*busy, *flood, return_exceptions=True)
        after = await bus.request(HOLD, {"wait": False}, org, timeout=30)
    finally:
        release.set()
        await runtime.stop()
    refused = [a for a in answers if isinstance(a, OneError)]
    answered = [a for a in answers if a == Hold(wait=False) or a == Hold(wait=True)]
    assert len(refused) == 37 and len(answered) == 5, answers  # 2 in progress + 3 in line; the rest shed
    assert all(isinstance(a, Unavailable) and a.details["reason"] == "overloaded" and a.details["retry_after"] == 1
               for a in refused)
    assert refused_within < 30 and after == Hold(wait=False)
