"""`one up`'s children: one process per service and per adapter, each logged in as itself, restarted with backoff.

A child that dies is restarted after a delay that doubles with each death in a row (`RestartPolicy`: 0.5 s,
1 s, 2 s, ... capped at 30 s); a child that had run for `stable_after` seconds before dying starts over at the
first delay. Each death is logged with its exit code (or signal) and the delay chosen, so a crash loop shows
in `one up`'s output instead of hiding behind a stack that restarts forever at full speed.

The servers `one up` started itself (Postgres, nats-server) are watched the same way (`Server`): one that dies
is started again on the same data directory and port, with the same backoff; the services reconnect by themselves.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.kernel import subjects
from shared.kernel.settings import Settings

log = logging.getLogger("shared.tools.stack")

ADAPTERS = {"mailer": ["mailer"]}
"""Processes `one up` runs beside the services (name -> `one` arguments): they deliver, they serve no requests."""


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 60.0  # ran this long before dying: not a crash loop, the delay starts over

    def delay(self, deaths_in_a_row: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** max(0, deaths_in_a_row - 1))


def describe_exit(returncode: int) -> str:
    """`exit code 3`, or `exit code -9 (SIGKILL)` for a child a signal ended."""
    if returncode < 0:
        try:
            return f"exit code {returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return f"exit code {returncode}"


@dataclass
class Child:
    process: subprocess.Popen
    started_at: float
    deaths_in_a_row: int = 0
    restart_at: float | None = None  # set when it is seen dead: when it is started again
    restarts: int = 0


@dataclass
class Server:
    """A server `one up` runs itself: `alive()` says whether it still runs, `start()` starts it on the same data."""

    name: str
    alive: Callable[[], bool] = field(repr=False)
    start: Callable[[], object] = field(repr=False)
    started_at: float = 0.0
    deaths_in_a_row: int = 0
    restart_at: float | None = None
    restarts: int = 0


@dataclass
class Supervisor:
    """Runs one child process per service (and per adapter, e.g. the mailer) and restarts a child that dies.

    `nats_passwords` (user -> password) when `one up` runs its own NATS with deploy/nats/nats-server.conf: each
    child then connects as its own user, with its own password and nobody else's.
    """

    settings: Settings
    nats_passwords: dict[str, str] = field(default_factory=dict, repr=False)
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    children: dict[str, Child] = field(default_factory=dict)
    servers: dict[str, Server] = field(default_factory=dict)  # watched before the children: they need them

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        return {name: child.process for name, child in self.children.items()}

    def metrics_ports(self) -> dict[str, int]:
        """Each child's metrics port: ONE_METRICS_PORT and the ports after it, in order; none when it is 0."""
        base = self.settings.metrics_port
        return {name: base + n for n, name in enumerate((*subjects.SERVICES, *ADAPTERS))} if base else {}

    def _env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env["ONE_DATABASE_URL"] = self.settings.database_url or ""
        env["ONE_NATS_URL"] = self.settings.nats_url or ""
        env["ONE_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["ONE_METRICS_PORT"] = str(self.metrics_ports().get(name, 0))
        env.setdefault("ONE_METRICS_HOST", "127.0.0.1")  # loopback unless configured, like every other port
        if self.settings.db_app_password:
            env["ONE_DB_APP_PASSWORD"] = self.settings.db_app_password.get_secret_value()
        if self.nats_passwords:
            env["ONE_NATS_USER"], env["ONE_NATS_PASSWORD"] = name, self.nats_passwords[name]
        return env

    def spawn(self, name: str) -> None:
        log_file = open(self.settings.data_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (child owns it)
        arguments = ADAPTERS.get(name, ["serve", name])
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.tools.cli", *arguments],
            env=self._env(name),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
        )
        log_file.close()  # the child has its own descriptor
        previous = self.children.get(name)
        self.children[name] = Child(process, self.clock(), previous.deaths_in_a_row if previous else 0,
                                    restarts=previous.restarts + 1 if previous else 0)

    def start_all(self) -> None:
        (self.settings.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        for name in (*subjects.SERVICES, *ADAPTERS):
            self.spawn(name)

    def watch(self, *servers: Server) -> None:
        """Restart these servers too when they die (`restart_dead`), before any child."""
        for server in servers:
            server.started_at = self.clock()
            self.servers[server.name] = server

    def restart_dead(self) -> list[str]:
        """Notice servers and children that exited (logged, children with their exit code) and start those whose
        delay is over; a server is started in this call (blocking until it is ready, or failed and rescheduled)."""
        restarted = self._restart_dead_servers()
        now = self.clock()
        for name, child in list(self.children.items()):
            if child.restart_at is None:
                if child.process.poll() is None:
                    continue
                ran = now - child.started_at
                child.deaths_in_a_row = 1 if ran >= self.policy.stable_after else child.deaths_in_a_row + 1
                delay = self.policy.delay(child.deaths_in_a_row)
                child.restart_at = now + delay
                log.warning("%s exited with %s after %.1f s; restarting in %.1f s (%d in a row)", name,
                            describe_exit(child.process.returncode), ran, delay, child.deaths_in_a_row)
            if now >= child.restart_at:
                self.spawn(name)
                log.warning("%s restarted (pid %d)", name, self.children[name].process.pid)
                restarted.append(name)
        return restarted

    def _restart_dead_servers(self) -> list[str]:
        restarted = []
        for name, server in self.servers.items():
            now = self.clock()
            if server.restart_at is None:
                if server.alive():
                    continue
                self._schedule(server, now, "is no longer running")
            if now < server.restart_at:
                continue
            try:
                server.start()
            except Exception as error:  # e.g. the killed server's shared memory is not released yet: try again later
                server.started_at = self.clock()  # a failed start counts as a death in a row: the delay grows
                self._schedule(server, server.started_at, f"did not start ({str(error).splitlines()[0][:200]})")
                continue
            server.started_at, server.restart_at, server.restarts = self.clock(), None, server.restarts + 1
            log.warning("%s restarted on the same data (%d restarts)", name, server.restarts)
            restarted.append(name)
        return restarted

    def _schedule(self, server: Server, now: float, what: str) -> None:
        ran = now - server.started_at
        server.deaths_in_a_row = 1 if ran >= self.policy.stable_after else server.deaths_in_a_row + 1
        delay = self.policy.delay(server.deaths_in_a_row)
        server.restart_at = now + delay
        log.warning("%s %s after %.1f s; restarting in %.1f s (%d in a row)", server.name, what, ran, delay,
                    server.deaths_in_a_row)

    def stop_all(self, timeout: float = 20.0) -> None:
        processes = list(self.processes.values())
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
