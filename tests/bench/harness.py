"""Figures, their baselines and ratios: printed as a table and merged into `.bench/latest.json`."""

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(".bench/latest.json")


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def latencies(call: Callable[[], Awaitable[object]], n: int, warmup: int) -> list[float]:
    """Sequential round trips, in microseconds."""
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


async def throughput(call: Callable[[], Awaitable[object]], n: int, in_flight: int) -> float:
    """Completed calls per second with `in_flight` outstanding at any time."""
    import asyncio

    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return n / (time.perf_counter() - start)


async def request_reply_figures(call: Callable[[], Awaitable[object]], n: int, n_throughput: int, in_flight: int = 64) -> dict:
    """p50/p99 of sequential calls (µs) and throughput with `in_flight` outstanding (calls/s)."""
    samples = await latencies(call, n, warmup=300)
    rate = await throughput(call, n_throughput, in_flight)
    return {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99), "throughput": rate}


def report(figures: list[Figure], console: Console | None = None) -> None:
    console = console or Console()
    table = Table("figure", "value", "baseline", "ratio", "unit", "note")
    for f in figures:
        table.add_row(f.name, f"{f.value:,.1f}", f"{f.baseline:,.1f}", f"{f.ratio:.2f}", f.unit, f.note)
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing.update(
        {f.name: {"value": f.value, "unit": f.unit, "baseline": f.baseline, "ratio": f.ratio} for f in figures}
    )
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    console.print(f"written to {RESULTS}")
