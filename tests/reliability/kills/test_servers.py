"""`one up` restarts its own servers too: a nats-server or a Postgres killed with SIGKILL is started again on the
same data directory and port (with the children's backoff, said in the log), the services reconnect by
themselves, and a write after it succeeds while every write before it is still there."""

import asyncio
import os
import signal
import time

import pytest

from shared.kernel.errors import OneError
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.tools.sdk import One
from shared.tools.stack_supervisor import RestartPolicy, Server, Supervisor
from tests.deploy.embedded_stack import Stack

pytestmark = pytest.mark.timeout(600)


async def _create_when_back(stack: Stack, key: str, name: str) -> None:
    """A thing created once the stack answers again (a caller retries while the server is down)."""
    bus = stack.bus_url
    deadline = time.monotonic() + 120
    while True:
        try:
            async with await One.connect(nats_url=bus, key=key, timeout=3, name="restart") as one:
                await one.things.create("blog_post", name, idempotency_key=name)
                return
        except (OneError, OSError, TimeoutError, Exception) as error:  # noqa: BLE001 (down: any transport error)
            assert time.monotonic() < deadline, f"no write succeeded after the restart: {error!r}"
            await asyncio.sleep(0.5)


async def _names(stack: Stack, key: str) -> list[str]:
    bus = stack.bus_url
    async with await One.connect(nats_url=bus, key=key, timeout=5, name="restart") as one:
        return sorted(t.name for t in (await one.things.query(type="blog_post", limit=100)).things)


@pytest.mark.parametrize("server", ["nats-server", "postgres"])
async def test_a_server_killed_with_sigkill_is_restarted_and_writes_succeed_after(
    stack: Stack, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="shared.tools.stack")
    before = f"before-{server}-{uuid7().hex[:6]}"
    await _create_when_back(stack, stack.platform_key, before)
    watched = stack.supervisor.servers[server]
    restarts = watched.restarts
    embedded = stack.servers.nats if server == "nats-server" else stack.servers.postgres
    pid = embedded.running_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while watched.restarts == restarts:
        assert time.monotonic() < deadline, f"{server} was not restarted: {caplog.text[-2000:]}"
        await asyncio.sleep(0.2)
    assert embedded.running_pid() not in (0, pid)
    after = f"after-{server}-{uuid7().hex[:6]}"
    await _create_when_back(stack, stack.platform_key, after)
    await stack.wait_healthy(120)  # every service reconnected without a human
    assert {before, after} <= set(await _names(stack, stack.platform_key))
    said = caplog.text
    assert f"{server} is no longer running" in said and f"{server} restarted on the same data" in said, said


def test_a_server_that_fails_to_start_is_tried_again_with_growing_delays(tmp_path, caplog) -> None:
    """The clock is the supervisor's own: a server that is dead and whose start fails is retried at 1, 2, 4 s."""
    caplog.set_level("WARNING", logger="shared.tools.stack")
    now, starts = [0.0], []

    def start() -> None:
        starts.append(now[0])
        if len(starts) < 3:
            raise RuntimeError("pre-existing shared memory block is still in use\nmore")

    supervisor = Supervisor(Settings(data_dir=tmp_path), policy=RestartPolicy(1.0, 8.0, stable_after=60.0),
                            clock=lambda: now[0])
    supervisor.watch(Server("postgres", alive=lambda: len(starts) >= 3, start=start))
    for _ in range(80):
        supervisor.restart_dead()
        now[0] += 0.25
    assert starts == [1.0, 3.0, 7.0]  # dead at 0: 1 s, then 2 s after the failed start, then 4 s
    assert supervisor.servers["postgres"].restarts == 1
    assert "postgres did not start (pre-existing shared memory block is still in use)" in caplog.text
