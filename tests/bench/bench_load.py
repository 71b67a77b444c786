"""load.*: the whole platform under a steady, realistic mix through the gateway, for minutes (issue 23).

`one up` runs every service as its own process against the bench's NATS and Postgres, as a person runs it;
the agents talk to the scripted model (OpenAI wire, answering at once). This process drives the gateway
over loopback at a fixed arrival rate (open loop: a slow answer does not slow the arrivals), with this mix
per second: who-am-I 3, thing create 4, thing read 4, event publish 4, event query from a cursor (the tail
a client polls) 2, knowledge search 2, agent chat 1 — 20 requests a second, `LOAD_SECONDS` long (default
180). It stops by itself: at the end of the time, or when more than `MAX_OUTSTANDING` requests are open.

Figures: p50 and p99 per operation (ms; baseline = the same operation's p50 in the first 20 s, so the
ratio shows drift under sustained load), the error count (any non-2xx or transport error; must be 0), and
the largest memory growth of any process of the stack (RSS after the run vs after the warm-up, MiB;
the stated bound: ≤ 64 MiB and ≤ 25 % per process).
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.bench.harness import Figure, percentile

PREFIX = "load"
SECONDS = float(os.environ.get("LOAD_SECONDS", "180"))
WARMUP = 20.0
MAX_OUTSTANDING = 400
MIX = {"whoami": 3, "thing.create": 4, "thing.get": 4, "event.publish": 4, "event.query": 2, "knowledge.search": 2,
       "agent.chat": 1}
GROWTH_BOUND_MIB, GROWTH_BOUND_RATIO = 64.0, 0.25


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_for(url: str, seconds: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


async def _all_healthy(nats_url: str, seconds: float = 300) -> None:
    """Every service of `one up` answers its health check (the gateway answering is not enough)."""
    from shared.kernel.settings import Settings
    from shared.tools.stack import fetch_health

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = await fetch_health(Settings(nats_url=nats_url))
        if all(getattr(report, "healthy", False) for report in health.values()):
            return
        await asyncio.sleep(1)
    raise RuntimeError(f"not every service was healthy within {seconds} s: {health}")


async def _org(nats_url: str, data_dir: Path) -> str:
    """A fresh org whose owner may call without rate or inference limits; its owner's key."""
    from shared.contracts.tenancy import ORG_CREATE, QUOTA_SET, RATE_SET, VERIFY_KEY
    from shared.kernel.settings import Settings
    from shared.runtime.client import BusClient

    platform_key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
    async with await BusClient.connect(Settings(nats_url=nats_url), name="bench-load") as bus:
        platform = (await bus.request(VERIFY_KEY, {"key": platform_key})).auth_context()
        owner = {"email": "owner@load.bench.test", "display_name": "Owner"}
        key = (await bus.request(ORG_CREATE, {"name": "load", "slug": "load-bench", "owner": owner}, platform)).owner_key
        ctx = (await bus.request(VERIFY_KEY, {"key": key})).auth_context()
        await bus.request(RATE_SET, {"scope": "org", "max_calls": 1_000_000_000, "window_seconds": 60}, ctx)
        for metric in ("inference", "things"):
            await bus.request(QUOTA_SET, {"org_id": str(ctx.org_id), "metric": metric, "limit": 10**9}, platform)
    return key


class Driver:
    """Open-loop arrivals per operation; every answer's latency and every failure kept."""

    def __init__(self, client: Any, model: str) -> None:
        self.client, self.model = client, model
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (started at, ms)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.outstanding = 0
        self.things: list[str] = []
        self.cursor = 0

    async def setup(self) -> None:
        thing = (await self.client.post("/v1/things", json={"type": "blog_post", "name": "load"})).json()
        self.things.append(thing["id"])
        for text in ("Tides follow the moon.", "Bread rises with yeast.", "Invoices are due in thirty days."):
            await self.client.post("/v1/knowledge/items", json={"text": text, "knowledge_type": "chunk"})
        config = {"model": self.model, "knowledge": {"enabled": False}}
        (await self.client.post("/v1/agents", json={"slug": "load", "name": "Load", "config": config})).raise_for_status()
        (await self.client.post("/v1/agents/load/deploy")).raise_for_status()
        for op in MIX:  # each operation once, unhurried: models load, caches fill, before anything is timed
            method, path, body, params = self.request(op)
            (await self.client.request(method, path, json=body, params=params, timeout=120)).raise_for_status()

    def request(self, op: str) -> tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]:
        thing = self.things[-1]
        return {
            "whoami": ("GET", "/v1/whoami", None, None),
            "thing.create": ("POST", "/v1/things", {"type": "blog_post", "name": f"post {time.time_ns()}"}, None),
            "thing.get": ("GET", f"/v1/things/{thing}", None, None),
            "event.publish": ("POST", "/v1/events", {"type": "content_event", "target_id": thing,
                                                     "metadata": {"action": "viewed"}}, None),
            "event.query": ("GET", "/v1/events", None, {"after": self.cursor, "limit": 100}),
            "knowledge.search": ("POST", "/v1/knowledge/search", {"query": "when is an invoice due", "k": 3}, None),
            "agent.chat": ("POST", "/v1/agents/load/chat", {"message": "hello"}, None),
        }[op]

    async def once(self, op: str, started: float) -> None:
        method, path, body, params = self.request(op)
        self.outstanding += 1
        begin = time.perf_counter()
        try:
            response = await self.client.request(method, path, json=body, params=params)
            if response.status_code >= 300:
                self.errors[op].append(f"{response.status_code} {response.text[:200]}")
                return
            self.samples[op].append((started, (time.perf_counter() - begin) * 1000))
            if op == "thing.create":
                self.things.append(response.json()["id"])
            elif op == "event.query" and response.json().get("next_cursor") is not None:
                self.cursor = response.json()["next_cursor"]
        except Exception as error:  # noqa: BLE001 - a transport failure is an error of the run, counted
            self.errors[op].append(repr(error))
        finally:
            self.outstanding -= 1

    async def arrivals(self, op: str, per_second: float, start: float, until: float, tasks: set) -> None:
        n = 0
        while True:
            at = start + n / per_second
            if at >= until or self.outstanding > MAX_OUTSTANDING:
                return
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            task = asyncio.create_task(self.once(op, at - start))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1


def _stack_memory(root_pid: int) -> dict[str, float]:
    """RSS (MiB) of `one up` and each process under it, by a stable name."""
    import psutil

    root = psutil.Process(root_pid)
    found = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            command = " ".join(process.cmdline()[1:4])
            found[f"{process.pid}:{command}"] = process.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return found


async def run(nats_url: str, db_url: str) -> list[Figure]:
    import httpx

    from tests.agents.scripted_model import ScriptedModel

    model_server = ScriptedModel()
    await model_server.start()
    model, _ = model_server.script({"text": "hello to you"})
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="one-load-") as data:
        env = {**os.environ, "ONE_DATA_DIR": data, "ONE_NATS_URL": nats_url, "ONE_DATABASE_URL": db_url,
               "ONE_GATEWAY_PORT": str(port), "ONE_AGENTS_OPENAI_BASE_URL": model_server.url,
               "ONE_AGENTS_OPENAI_API_KEY": "bench", "ONE_TRACE_SAMPLE_RATIO": "0.1", "ONE_LOG_LEVEL": "WARNING"}
        stack = subprocess.Popen([sys.executable, "-m", "shared.tools.cli", "up"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_for(f"{base}/healthz")
            await _all_healthy(nats_url)
            key = await _org(nats_url, Path(data))
            limits = httpx.Limits(max_connections=MAX_OUTSTANDING, max_keepalive_connections=64)
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                         timeout=30) as client:
                driver = Driver(client, model)
                await driver.setup()
                tasks: set = set()
                start = time.perf_counter()
                await asyncio.gather(*(driver.arrivals(op, rate, start, start + WARMUP, tasks) for op, rate in MIX.items()))
                memory_before = _stack_memory(stack.pid)
                await asyncio.gather(*(driver.arrivals(op, rate, start + WARMUP, start + WARMUP + SECONDS, tasks)
                                       for op, rate in MIX.items()))
                while tasks:
                    await asyncio.gather(*list(tasks), return_exceptions=True)
                memory_after = _stack_memory(stack.pid)
        finally:
            os.killpg(stack.pid, signal.SIGINT)
            try:
                stack.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
            await model_server.stop()
    return _figures(driver, memory_before, memory_after)


def _figures(driver: Driver, before: dict[str, float], after: dict[str, float]) -> list[Figure]:
    figures = []
    for op in MIX:
        steady = [ms for at, ms in driver.samples[op] if at >= WARMUP] or [float("nan")]
        warm = [ms for at, ms in driver.samples[op] if at < WARMUP] or [float("nan")]
        base = percentile(warm, 0.5)
        note = f"{len(steady)} calls at {MIX[op]}/s over {SECONDS:.0f} s; baseline: p50 of the warm-up"
        figures += [Figure(f"{PREFIX}.{op}.p50", percentile(steady, 0.5), "ms", base, note),
                    Figure(f"{PREFIX}.{op}.p99", percentile(steady, 0.99), "ms", base, note)]
    errors = sum(len(e) for e in driver.errors.values())
    first = "; ".join(f"{op}: {e[0]}" for op, e in driver.errors.items() if e)[:300]
    figures.append(Figure(f"{PREFIX}.errors", errors, "count", 0, f"must be 0; {first or 'none'}"))
    growth = {name: after[name] - mib for name, mib in before.items() if name in after}
    worst = max(growth, key=growth.get) if growth else "none"
    within = all(g <= GROWTH_BOUND_MIB and g <= GROWTH_BOUND_RATIO * before[n] for n, g in growth.items())
    figures.append(Figure(f"{PREFIX}.rss_growth_max", growth.get(worst, 0.0), "MiB", GROWTH_BOUND_MIB,
                          f"{'within' if within else 'BEYOND'} the bound (≤{GROWTH_BOUND_MIB:.0f} MiB and "
                          f"≤{GROWTH_BOUND_RATIO:.0%}); worst {worst.split(':', 1)[-1]}; {len(growth)} processes"))
    return figures
