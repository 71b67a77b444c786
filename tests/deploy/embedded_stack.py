"""A `one up` in the test process: the same servers (secure by default), migrations, bootstrap and supervised
children as the command, with the parts a test needs to reach (the supervisor, the secrets, the settings)."""

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.kernel import subjects
from shared.kernel.settings import Settings
from shared.tools.embedded import port_is_free
from shared.tools.stack import (
    DataDirLock,
    EmbeddedServers,
    Supervisor,
    bring_up,
    fetch_health,
    remove_runtime,
    write_runtime,
)
from shared.tools.stack_secrets import StackSecrets
from shared.tools.stack_supervisor import ADAPTERS, RestartPolicy

CHILDREN = (*subjects.SERVICES, *ADAPTERS)
CLEARED = ("DATABASE_URL", "NATS_URL", "ONE_DATABASE_URL", "ONE_NATS_URL", "ONE_NATS_USER", "ONE_NATS_PASSWORD",
           "ONE_DB_APP_PASSWORD", "ONE_APP_DATABASE_URL", "ONE_METRICS_HOST")


_OWN_PORTS = range(20000, 32000)
"""Below the kernel's ephemeral range (32768 and up): the kernel never gives these out by itself. A port from that
range, released by a child killed -9, could be handed to another test's bind to port 0 or outgoing connection
before the child's restart bound it again (a full suite saw graph's metrics port taken for ~40 s: 11 restarts)."""


def free_ports(n: int) -> int:
    """The first of `n` consecutive ports free right now (`one up` gives one metrics port to each child)."""
    while True:
        first = random.randrange(_OWN_PORTS.start, _OWN_PORTS.stop - n)
        if all(port_is_free(first + i) for i in range(n)):
            return first


@dataclass
class Stack:
    data_dir: Path
    gateway_port: int = field(default_factory=lambda: free_ports(1))
    metrics_port: int = field(default_factory=lambda: free_ports(len(CHILDREN)))
    settings: Settings | None = None
    servers: EmbeddedServers | None = None
    supervisor: Supervisor | None = None
    platform_key: str | None = None
    _supervising: asyncio.Task | None = None
    _stopping: bool = False
    _lock: DataDirLock | None = None
    _environment: pytest.MonkeyPatch = field(default_factory=pytest.MonkeyPatch)

    @property
    def secrets(self) -> StackSecrets:
        return self.servers.secrets

    @property
    def bus_url(self) -> str:
        """The NATS URL with the CLI's login, as `one` finds it in runtime.json."""
        return json.loads((self.data_dir / "runtime.json").read_text())["nats_url"]

    async def start(self, timeout: float = 240) -> "Stack":
        for name in CLEARED:  # what the children inherit: nothing of the session's own servers
            self._environment.delenv(name, raising=False)
        self._environment.setenv("ONE_GATEWAY_PORT", str(self.gateway_port))
        self._environment.setenv("ONE_TRACE_SAMPLE_RATIO", "0")
        base = Settings(data_dir=self.data_dir, database_url=None, nats_url=None, metrics_port=self.metrics_port,
                        log_level="WARNING")
        self._lock = DataDirLock.acquire(self.data_dir)  # as `one up` holds it
        self.settings, self.servers, self.platform_key = await bring_up(base)
        write_runtime(self.settings, self.servers)
        self.supervisor = Supervisor(self.settings, nats_passwords=self.servers.nats_passwords(),
                                     policy=RestartPolicy(first_delay=0.2, max_delay=5.0, stable_after=30.0))
        self.supervisor.watch(*self.servers.watched())  # as `one up` does: a dead Postgres or nats-server too
        self.supervisor.start_all()
        self._supervising = asyncio.create_task(self._supervise())
        await self.wait_healthy(timeout)
        return self

    async def _supervise(self) -> None:
        while not self._stopping:  # what `one up` does between its health checks
            await asyncio.to_thread(self.supervisor.restart_dead)  # a server's restart blocks until it is ready
            await asyncio.sleep(0.2)

    async def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            reports = await fetch_health(self.settings, timeout=1.0)
            unhealthy = {n: r for n, r in reports.items() if not getattr(r, "healthy", False)}
            if not unhealthy:
                return
            if time.monotonic() > deadline:
                logs = {n: self.log(n)[-1500:] for n in unhealthy}
                raise AssertionError(f"not healthy after {timeout}s: {unhealthy}\n{logs}")
            await asyncio.sleep(0.5)

    def log(self, name: str) -> str:
        return (self.data_dir / "logs" / f"{name}.log").read_text(errors="replace")

    async def stop(self) -> None:
        """Stop as `one up` does on Ctrl-C: children, then servers, then runtime.json."""
        if self._supervising:
            self._stopping = True  # the loop ends after its current pass: no restart races the stop below
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervising
            self._supervising = None
        if self.supervisor:
            self.supervisor.stop_all()
        if self.servers:
            self.servers.stop()
        if self.settings:
            remove_runtime(self.settings)
        if self._lock:
            self._lock.release()
        self._environment.undo()


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def run_one(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`one <args>` as a user runs it beside the stack: only ONE_DATA_DIR set, the rest found in the data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONE_") and k not in ("DATABASE_URL", "NATS_URL")}
    return subprocess.run([sys.executable, "-m", "shared.tools.cli", *args], env={**env, "ONE_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=timeout, check=False)
