"""`one up`'s children: one process per service and per adapter, each logged in as itself, restarted with backoff.

A child that dies is restarted after a delay that doubles with each death in a row (`RestartPolicy`: 0.5 s,
1 s, 2 s, ... capped at 30 s); a child that had run for `stable_after` seconds before dying starts over at the
first delay. Each death is logged with its exit code (or signal) and the delay chosen, so a crash loop shows
in `one up`'s output instead of hiding behind a stack that restarts forever at full speed.
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

    def restart_dead(self) -> list[str]:
        """Notice children that exited (logged with their exit code) and start those whose delay is over."""
        restarted = []
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
