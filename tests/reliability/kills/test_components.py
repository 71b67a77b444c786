"""kill -9 of tenancy, knowledge, commerce and the gateway, each in the middle of a stream of writes, on a real
supervised stack: the supervisor restarts the process, a client that retries gets every write in exactly once
(each key stored once, none missing), and the outage was felt (some tries failed) without any `internal` answer.
The gateway's in-flight HTTP requests fail at once with a transport error (no hang, no 5xx) and new requests
succeed after its restart. The long runs under load are the chaos suite's (test_chaos_stack.py)."""

import os
import signal
import time
from collections import Counter

import httpx
import pytest

from shared.contracts.commerce.discounts import DISCOUNT_CREATE, DISCOUNT_LIST
from shared.contracts.knowledge import LABEL_ENSURE, LABEL_LIST
from shared.contracts.tenancy import ORG_CREATE, ORG_LIST
from shared.kernel.ids import uuid7
from shared.tools.sdk import One
from tests.deploy.embedded_stack import Stack
from tests.reliability.retrying import RetryingWriter

pytestmark = pytest.mark.timeout(600)
WRITES, KILL_AFTER = 30, 8  # the kill lands while later writes are in flight


async def _kill_mid_stream(stack: Stack, name: str, writer: RetryingWriter, keys: list[str]) -> None:
    child = stack.supervisor.children[name]
    restarts = child.restarts
    await writer.stream(keys, lambda: os.kill(child.process.pid, signal.SIGKILL), KILL_AFTER)
    assert stack.supervisor.children[name].restarts == restarts + 1, f"{name} was not restarted"
    assert sorted(writer.acked) == sorted(keys)
    assert writer.failed_tries > 0, "no write met the outage: the kill came too late to test anything"


def _exactly_once(stored: list[str], keys: list[str], prefix: str) -> None:
    counts = Counter(k for k in stored if k.startswith(prefix))
    assert {k: n for k, n in counts.items() if n != 1} == {}, "stored twice"
    assert sorted(counts) == sorted(keys), "missing or unexpected"


async def _bus_writes_survive_a_kill(stack: Stack, key: str, service: str, prefix: str, write, stored) -> None:
    """`write(one, key)` for each key while `service` is killed; `stored(one)`: the keys found afterwards."""
    keys = [f"{prefix}-{n}" for n in range(WRITES)]
    async with await One.connect(nats_url=stack.bus_url, key=key, timeout=3, name="kill") as one:
        await _kill_mid_stream(stack, service, RetryingWriter(lambda k: write(one, k)), keys)
        found = await stored(one)
    _exactly_once(found, keys, prefix)


async def test_tenancy_killed_mid_stream_of_org_creates(stack: Stack) -> None:
    async def stored(one: One) -> list[str]:
        return [o.slug for o in (await one.request(ORG_LIST, {"limit": 1000})).organizations]

    await _bus_writes_survive_a_kill(stack, stack.platform_key, "tenancy", f"kt-{uuid7().hex[:6]}",
                                     lambda one, slug: one.request(ORG_CREATE, {"name": slug, "slug": slug}), stored)


async def test_knowledge_killed_mid_stream_of_label_writes(stack: Stack, owner_key: str) -> None:
    prefix = f"kk-{uuid7().hex[:6]}"

    async def stored(one: One) -> list[str]:
        return [label.name for label in (await one.request(LABEL_LIST, {"prefix": prefix, "limit": 100})).labels]

    await _bus_writes_survive_a_kill(stack, owner_key, "knowledge", prefix,
                                     lambda one, name: one.request(LABEL_ENSURE, {"name": name}), stored)


async def test_commerce_killed_mid_stream_of_discount_creates(stack: Stack, owner_key: str) -> None:
    async def stored(one: One) -> list[str]:
        return [d.code for d in (await one.request(DISCOUNT_LIST, {"limit": 500})).discounts]

    def create(one: One, code: str):
        return one.request(DISCOUNT_CREATE, {"code": code, "name": code, "kind": "percentage", "percent_off": 10})

    await _bus_writes_survive_a_kill(stack, owner_key, "commerce", f"KC{uuid7().hex[:6]}", create, stored)


async def test_gateway_killed_mid_stream_of_http_writes(stack: Stack, owner_key: str) -> None:
    prefix = f"kg-{uuid7().hex[:6]}"
    keys = [f"{prefix}-{n}" for n in range(WRITES)]
    statuses: Counter = Counter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.gateway_port}", timeout=10,
                                 headers={"X-API-Key": owner_key}) as http:

        async def create(key: str) -> None:
            response = await http.post("/v1/things", json={"type": "blog_post", "name": key, "idempotency_key": key})
            statuses[response.status_code] += 1
            if response.status_code not in (200, 201):
                raise AssertionError(f"{key}: {response.status_code} {response.text[:300]}")

        writer = RetryingWriter(create)
        started = time.monotonic()
        await _kill_mid_stream(stack, "gateway", writer, keys)
        assert "ReadTimeout" not in writer.errors and "PoolTimeout" not in writer.errors, writer.errors  # no hang
        assert set(writer.errors) <= {"ConnectError", "ReadError", "RemoteProtocolError", "WriteError"}, writer.errors
        assert all(status < 500 for status in statuses), statuses
        assert time.monotonic() - started < 120
        things = (await http.get("/v1/things", params={"type": "blog_post", "limit": 100})).json()
    names = [t["name"] for t in things.get("things", things.get("items", []))]
    _exactly_once(names, keys, prefix)
