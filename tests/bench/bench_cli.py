"""cli.start: a whole `one whoami` (start the interpreter, import, connect, verify the key over the bus, print)
against a running tenancy, beside `python -c pass`: what a person waits for a one-request command.

Tenancy runs in its own process (`bench_tenancy serve`). The two commands alternate, RUNS times each,
so a noisy neighbour slows both alike; the figure is the median, the note gives the spread. Target:
under 0.3 s absolute.
"""

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.harness import Figure

PREFIX = "cli.start"
RUNS = 15
TARGET = 0.3


def _one() -> list[str]:
    """The installed `one` script, as a person runs it; `python -m shared.tools.cli` when there is none."""
    script = Path(sys.executable).with_name("one")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shared.tools.cli"]


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start


async def run(nats_url: str, db_url: str) -> list[Figure]:
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_tenancy", "serve", nats_url, db_url],
                              stdout=subprocess.PIPE, text=True)
    try:
        word, key = (await asyncio.to_thread(server.stdout.readline)).split()
        assert word == "ready"
        with tempfile.TemporaryDirectory(prefix="one-bench-cli-") as data_dir:
            # As on a person's machine, Python keeps the bytecode it compiled (this sandbox sets
            # PYTHONDONTWRITEBYTECODE, which recompiled every module of ours on every run): in the bench's own
            # directory, not the source tree.
            inherited = {k: v for k, v in os.environ.items()
                         if not k.startswith("ONE_") and k != "PYTHONDONTWRITEBYTECODE"}
            env = {**inherited,
                   "ONE_NATS_URL": nats_url, "ONE_API_KEY": key, "ONE_DATA_DIR": data_dir,
                   "PYTHONPYCACHEPREFIX": str(Path(data_dir) / "pycache")}
            whoami, bare = [], []
            _timed([*_one(), "whoami"], env)  # warm the page cache and .pyc files once
            for _ in range(RUNS):
                bare.append(await asyncio.to_thread(_timed, [sys.executable, "-c", "pass"], env))
                whoami.append(await asyncio.to_thread(_timed, [*_one(), "whoami"], env))
    finally:
        server.terminate()
        server.wait()
    value, baseline = statistics.median(whoami), statistics.median(bare)
    note = (f"`one whoami` end to end (bytecode cached), median of {RUNS} alternating runs ({min(whoami):.3f}-{max(whoami):.3f} s); "
            f"baseline `python -c pass` ({min(bare):.3f}-{max(bare):.3f} s); target < {TARGET} s absolute"
            f" ({'met' if value < TARGET else 'NOT met'})")
    return [Figure(PREFIX, value, "s", baseline, note)]
