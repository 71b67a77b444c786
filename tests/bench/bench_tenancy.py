"""tenancy.verify_key.*: API key verification through the bus (cache warm) vs bare nats-py request/reply.

As in `bench_bus`, the service and the client each run in their own process, the
bare pair (`rr_processes`) and ours alternate for a few rounds and each keeps its
best, so a noisy neighbour hurts both alike. `python -m tests.bench.bench_tenancy
serve|measure ...` are the two sides of our pair.
"""

import asyncio
import json
import subprocess
import sys

from tests.bench.harness import Figure, request_reply_figures
from tests.bench.rr_processes import IN_FLIGHT, settings_for, tracing

PREFIX = "tenancy.verify_key"
ROUNDS = 3
N_LATENCY = 3000
N_THROUGHPUT = 20000
SAMPLE_RATIO = 0.1


def _run(module: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


async def _measure_bare(nats_url: str, db_url: str) -> dict:
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.rr_processes", "serve", "bare", nats_url, db_url, "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert (await asyncio.to_thread(server.stdout.readline)).strip() == "ready"
        return await asyncio.to_thread(
            _run, "tests.bench.rr_processes", "measure", "bare", nats_url, db_url, "0", str(N_LATENCY), str(N_THROUGHPUT)
        )
    finally:
        server.terminate()
        server.wait()


async def _measure_ours(nats_url: str, db_url: str) -> dict:
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_tenancy", "serve", nats_url, db_url],
                              stdout=subprocess.PIPE, text=True)
    try:
        word, key = (await asyncio.to_thread(server.stdout.readline)).split()
        assert word == "ready"
        return await asyncio.to_thread(
            _run, "tests.bench.bench_tenancy", "measure", nats_url, db_url, key, str(N_LATENCY), str(N_THROUGHPUT)
        )
    finally:
        server.terminate()
        server.wait()


def _best(results: list[dict]) -> dict:
    return {"p99": min(r["p99"] for r in results), "throughput": max(r["throughput"] for r in results)}


async def run(nats_url: str, db_url: str) -> list[Figure]:
    bare_runs, our_runs = [], []
    for _ in range(ROUNDS):
        bare_runs.append(await _measure_bare(nats_url, db_url))
        our_runs.append(await _measure_ours(nats_url, db_url))
    bare, ours = _best(bare_runs), _best(our_runs)
    pairs = [o["throughput"] / b["throughput"] for o, b in zip(our_runs, bare_runs, strict=True)]
    note = (f"cached verify, {IN_FLIGHT} in flight, 10% sampled; best of {ROUNDS} alternating rounds (a round's ratio"
            f" {min(pairs):.2f}-{max(pairs):.2f}); target rate ≥0.5×")
    return [
        Figure(f"{PREFIX}.rate", ours["throughput"], "verify/s", bare["throughput"], note),
        Figure(f"{PREFIX}.p99", ours["p99"], "µs", bare["p99"], "sequential; baseline bare p99"),
    ]


async def serve(nats_url: str, db_url: str) -> None:
    from tests.bench.services import start_with_tenancy

    platform = await start_with_tenancy("tenancy", None, nats_url, db_url, SAMPLE_RATIO)
    print("ready", platform.key, flush=True)
    await asyncio.Event().wait()


async def measure(nats_url: str, db_url: str, key: str, n: str, n_tp: str) -> None:
    from shared.contracts.tenancy import VERIFY_KEY, VerifyKey
    from shared.runtime.client import BusClient

    settings = settings_for(nats_url, db_url, SAMPLE_RATIO)
    tracing("bench-client", settings)
    bus = await BusClient.connect(settings)
    payload = VerifyKey(key=key)

    async def call() -> object:
        return await bus.request(VERIFY_KEY, payload, timeout=10)

    print(json.dumps(await request_reply_figures(call, int(n), int(n_tp), IN_FLIGHT)))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    asyncio.run(serve(*args) if command == "serve" else measure(*args))
