"""The one JetStream consumer on a real JetStream: ack after the handler, dead letters with reasons, backoff."""

import asyncio
import json
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from shared.kernel import subjects
from shared.runtime.consumer import DEAD_LETTER_RETRIES, ConsumerPolicy, DurableConsumer, Poison, delivery_info
from tests.polling import until

pytestmark = pytest.mark.usefixtures("services")  # the event log has made the dead-letter stream


@pytest.fixture
async def stream(nc: NatsClient) -> AsyncIterator[tuple[str, str]]:
    """A stream of this test's own, so no other consumer sees its messages."""
    name = f"TEST_CONSUMER_{uuid4().hex[:8]}"
    subject = f"test.{name.lower()}"
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{subject}.>"]))
    yield name, subject
    await js.delete_stream(name)


def policy(stream: tuple[str, str], **overrides: float) -> ConsumerPolicy:
    name, subject = stream
    return ConsumerPolicy(
        durable=f"{name.lower()}-durable", subjects=(f"{subject}.>",), stream=name, batch_size=10, fetch_wait=0.05,
        ack_wait=5.0, **{"max_deliver": 3, "retry_delay": 0.2, "retry_delay_max": 1.0, **overrides},
    )


async def dead_letters(nc: NatsClient, service: str) -> tuple[list[dict], object]:
    letters: list[dict] = []

    async def collect(msg: Msg) -> None:
        letters.append(json.loads(msg.data))

    return letters, await nc.subscribe(subjects.dead_letter(service), cb=collect)


async def publish(nc: NatsClient, subject: str, *bodies: bytes) -> None:
    js = nc.jetstream()
    for body in bodies:
        await js.publish(f"{subject}.x", body)


async def test_a_handled_batch_is_acked_once_and_not_redelivered(nc: NatsClient, stream: tuple[str, str]) -> None:
    seen: list[bytes] = []

    async def handle(msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        seen.extend(m.data for m in msgs)
        return []

    consumer = DurableConsumer("probe", policy(stream), handle)
    await consumer.start(nc)
    try:
        await publish(nc, stream[1], b"1", b"2", b"3")
        await until(lambda: len(seen) == 3)
        await asyncio.sleep(0.3)
        info = await nc.jetstream().consumer_info(stream[0], consumer.policy.durable)
        assert info.num_ack_pending == 0 and info.num_pending == 0
        assert sorted(seen) == [b"1", b"2", b"3"] and consumer.counters.redelivered == 0
    finally:
        await consumer.stop()


async def test_poison_is_dead_lettered_with_its_reason_and_never_redelivered(nc: NatsClient, stream: tuple[str, str]) -> None:
    letters, sub = await dead_letters(nc, "probe-poison")
    handled: list[bytes] = []

    async def handle(msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        handled.extend(m.data for m in msgs)
        return [Poison(m, "not_json", "the body is not JSON") for m in msgs if not m.data.startswith(b"{")]

    consumer = DurableConsumer("probe-poison", policy(stream), handle)
    await consumer.start(nc)
    try:
        await publish(nc, stream[1], b'{"id": "%s"}' % str(uuid4()).encode(), b"garbage")
        await until(lambda: len(letters) == 1)
        assert letters[0]["reason_code"] == "not_json" and letters[0]["raw"] == "garbage"
        assert letters[0]["consumer"] == consumer.policy.durable and letters[0]["subject"] == f"{stream[1]}.x"
        await asyncio.sleep(0.5)
        assert handled.count(b"garbage") == 1, "a dead-lettered message came back"
        assert consumer.counters.dead_lettered == {"not_json": 1}
    finally:
        await consumer.stop()
        await sub.unsubscribe()


async def test_a_failing_handler_is_retried_with_backoff_then_dead_lettered(nc: NatsClient, stream: tuple[str, str]) -> None:
    letters, sub = await dead_letters(nc, "probe-failing")
    deliveries: list[tuple[int, float]] = []
    loop = asyncio.get_running_loop()

    async def handle(msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        deliveries.extend((delivery_info(m)[1], loop.time()) for m in msgs)
        raise ConnectionError("the database is down")

    consumer = DurableConsumer("probe-failing", policy(stream), handle)
    await consumer.start(nc)
    try:
        await publish(nc, stream[1], b"{}")
        await until(lambda: len(letters) == 1, timeout=10)
        assert [n for n, _ in deliveries] == [1, 2, 3]
        gaps = [b - a for (_, a), (_, b) in zip(deliveries, deliveries[1:])]
        assert gaps[0] >= 0.2 and gaps[1] >= 0.4, f"NAK delays must double per delivery, got {gaps}"
        assert letters[0]["reason_code"] == "max_deliver" and "database is down" in letters[0]["reason"]
        assert consumer.counters.transient_failures == 3
        await asyncio.sleep(0.5)
        assert len(deliveries) == 3, "a dead-lettered message came back"
    finally:
        await consumer.stop()
        await sub.unsubscribe()


async def test_a_changed_policy_updates_the_existing_consumer(nc: NatsClient, stream: tuple[str, str]) -> None:
    async def handle(msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        return []

    first = DurableConsumer("probe", policy(stream, max_deliver=3), handle)
    await first.start(nc)
    await first.stop()
    second = DurableConsumer("probe", policy(stream, max_deliver=7), handle)
    await second.start(nc)
    try:
        info = await nc.jetstream().consumer_info(stream[0], second.policy.durable)
        assert info.config.max_deliver == 7 + DEAD_LETTER_RETRIES  # deliveries kept for a dead letter's retry
    finally:
        await second.stop()
