"""bus.rr.*: request/reply through our client + a service handler vs bare nats-py on both ends.

Each side runs in its own process (client and responder), as in production; the
bare and our pairs alternate for a few rounds and each keeps its best round, so a
noisy neighbour on the shared machine hurts both equally rather than one.
"""

import asyncio
import json
import subprocess
import sys

from tests.bench.harness import Figure

PREFIX = "bus.rr"
ROUNDS = 3
N_LATENCY = 3000
N_THROUGHPUT = 20000


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.rr_processes", *args], stdout=subprocess.PIPE, text=True)


async def _measure_pair(kind: str, nats_url: str, db_url: str, ratio: float) -> dict:
    server = _spawn("serve", kind, nats_url, db_url, str(ratio))
    try:
        assert (await asyncio.to_thread(server.stdout.readline)).strip() == "ready"
        client = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tests.bench.rr_processes", "measure", kind, nats_url, db_url, str(ratio),
             str(N_LATENCY), str(N_THROUGHPUT)],
            capture_output=True, text=True, check=True,
        )
        return json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait()


def _best(results: list[dict]) -> dict:
    return {
        "p50": min(r["p50"] for r in results),
        "p99": min(r["p99"] for r in results),
        "throughput": max(r["throughput"] for r in results),
    }


async def run(nats_url: str, db_url: str) -> list[Figure]:
    runs: dict[str, list[dict]] = {"bare": [], "ours": [], "traced": []}
    for _ in range(ROUNDS):
        runs["bare"].append(await _measure_pair("bare", nats_url, db_url, 0.0))
        runs["ours"].append(await _measure_pair("ours", nats_url, db_url, 0.1))
        runs["traced"].append(await _measure_pair("ours", nats_url, db_url, 1.0))
    bare, ours, traced = _best(runs["bare"]), _best(runs["ours"]), _best(runs["traced"])
    figures = []
    for label, mine, note in (("bus.rr", ours, "10% sampled; target p50 ≤1.5×, tp ≥0.30×"), ("bus.rr.traced", traced, "100% sampled")):
        figures += [
            Figure(f"{label}.p50", mine["p50"], "µs", bare["p50"], note),
            Figure(f"{label}.p99", mine["p99"], "µs", bare["p99"], note),
            Figure(f"{label}.throughput64", mine["throughput"], "msg/s", bare["throughput"], note),
        ]
    return figures
