"""Messages past the broker's size limit get a typed error at once, not a timeout."""

import pytest

from shared.kernel.envelope import AuthContext, register_message
from shared.kernel.errors import PayloadTooLarge
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from tests.probe.app import ECHO, Echo, serve_router

BIG = register_message("probe.big", "one.probe.big", Echo, Echo)

pytestmark = pytest.mark.usefixtures("services")


async def test_a_request_past_the_limit_is_refused_before_it_is_sent(bus: BusClient, org: AuthContext) -> None:
    with pytest.raises(PayloadTooLarge) as error:
        await bus.request(ECHO, {"text": "x" * bus.nc.max_payload}, org, timeout=30)
    assert error.value.details["max_payload"] == bus.nc.max_payload < error.value.details["size"]


async def test_a_reply_past_the_limit_is_a_typed_error(migrated: Settings, bus: BusClient, org: AuthContext) -> None:
    router = ServiceRouter("probe")

    @router.handler(BIG, transactional=False)
    async def big(ctx: WorkContext, payload: Echo) -> Echo:  # a small question, a too large answer
        return Echo(text=payload.text * (bus.nc.max_payload // len(payload.text) + 1))

    runtime = await serve_router(router, migrated)
    try:
        with pytest.raises(PayloadTooLarge) as error:
            await bus.request(BIG, {"text": "abc"}, org, timeout=30)  # before: a timeout after 30 s
        assert await bus.request(ECHO, {"text": "still answering"}, org) == Echo(text="still answering")
    finally:
        await runtime.stop()
    assert error.value.details["size"] > error.value.details["max_payload"]
