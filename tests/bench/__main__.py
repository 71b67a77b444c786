"""`python -m tests.bench [--only PREFIX]`: run the benchmarks against real servers."""

import argparse
import asyncio
import importlib
import pkgutil
import tempfile
from pathlib import Path

from shared.kernel.settings import Settings
from shared.runtime.migrate import migrate_services
from shared.tools.stack import all_migrations
from tests import bench
from tests.bench.harness import Figure, report
from tests.infra import provide_servers


def modules(only: str | None) -> list:
    found = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"tests.bench.{info.name}")
            if not only or module.PREFIX.startswith(only) or only.startswith(module.PREFIX):
                found.append(module)
    return found


async def main(only: str | None) -> None:
    selected = modules(only)
    if not selected:
        raise SystemExit(f"no benchmark matches {only!r}")
    with tempfile.TemporaryDirectory(prefix="one-bench-") as root:
        servers = provide_servers(Path(root))
        try:
            settings = Settings(database_url=servers.database_url, nats_url=servers.nats_url)
            await migrate_services(settings, {**all_migrations(), "probe": "tests.probe.migrations"})
            figures: list[Figure] = []
            for module in selected:
                figures += await module.run(servers.nats_url, servers.database_url)
            report([f for f in figures if not only or f.name.startswith(only)])
        finally:
            servers.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run only figures whose name starts with this prefix")
    asyncio.run(main(parser.parse_args().only))
