"""A message a consumer gives up on ends in the dead-letter table with its reason, seen by its org in
`one events deadletters` and counted in the metrics (issue 23, "Poison and overload")."""

import json
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import StreamConfig
from prometheus_client import REGISTRY

from shared.contracts.eventlog import DEAD_LETTERS
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.runtime.consumer import ConsumerPolicy, DurableConsumer, Poison
from tests.cli.conftest import Cli
from tests.polling import until_async
from tests.tenancy.conftest import Account


@pytest.fixture
async def stream(nc: NatsClient) -> AsyncIterator[tuple[str, str]]:
    name = f"TEST_POISON_{uuid4().hex[:8]}"
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"test.{name.lower()}.>"]))
    yield name, f"test.{name.lower()}"
    await js.delete_stream(name)


async def test_a_message_that_fails_every_delivery_is_stored_with_its_reason(
    one: Cli, owner: Account, bus: BusClient, nc: NatsClient, stream: tuple[str, str]
) -> None:
    name, subject = stream
    durable = f"{name.lower()}-durable"

    async def always_down(msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        raise ConnectionError("the database is down")

    consumer = DurableConsumer("probe", ConsumerPolicy(
        durable=durable, subjects=(f"{subject}.>",), stream=name, batch_size=10, fetch_wait=0.05, ack_wait=5.0,
        max_deliver=3, retry_delay=0.1, retry_delay_max=0.2), always_down)
    event_id = uuid7()
    await consumer.start(nc)
    try:
        await nc.jetstream().publish(f"{subject}.x", json.dumps(
            {"id": str(event_id), "org_id": str(owner.org_id), "type": "probe"}).encode())

        async def stored() -> list:
            page = await bus.request(DEAD_LETTERS, {}, owner.ctx)
            return [d for d in page.dead_letters if d.event_id == event_id]

        letters = await until_async(stored, timeout=60)
    finally:
        await consumer.stop()
    assert len(letters) == 1 and letters[0].reason_code == "max_deliver"
    assert "gave up after 3 deliveries" in letters[0].reason and "the database is down" in letters[0].reason
    assert REGISTRY.get_sample_value("one_consumer_dead_letters_total",
                                     {"consumer": durable, "reason": "max_deliver"}) == 1.0
    table = (await one("events", "deadletters", columns=200)).ok()
    assert "max_deliver" in table and "gave up after 3 deliveries" in table
    rows = [json.loads(line) for line in (await one("events", "deadletters", "--json")).ok().splitlines()]
    assert [r["event_id"] for r in rows] == [str(event_id)]
