"""Postgres 16 + pgvector as a local child process, from the ``pgserver`` wheel (no Docker)."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.tools.embedded.host import HOST, choose_port, log_tail, pid_alive, pid_exists

# Postgres refuses to run as root, so as root we run it as this system user
# (the same one the pgserver package itself uses).
PG_SYSTEM_USER = "pgserver"
# Longest unix socket path Linux accepts is 107 bytes; keep a margin.
_MAX_SOCKET_PATH = 100


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

        port = choose_port(self._port_file, self.port)
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
                f"{exc}\n--- tail of {self.log_file} ---\n{log_tail(self.log_file)}"
            ) from None
        self.port = port
        return self.url

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions); no-op if not running."""
        pid = self._postmaster_pid()
        if not pid or not pid_alive(pid):
            return  # a stale postmaster.pid is fine: Postgres ignores it on start
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", "fast", "stop")
        except RuntimeError:
            pid = self._postmaster_pid()
            if pid and pid_alive(pid):
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
            if not pid or not pid_exists(pid):
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
        if not pid_alive(pid):
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
    """The unprivileged user Postgres runs as when we are root, created on first use."""
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", name], check=True, capture_output=True)
        return pwd.getpwnam(name)
