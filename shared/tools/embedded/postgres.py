"""Postgres 16 + pgvector as a local child process, from the ``pgserver`` wheel (no Docker)."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from shared.tools.embedded.host import HOST, choose_port, log_tail, pid_alive, pid_exists

# Postgres refuses to run as root, so as root we run it as this system user
# (the same one the pgserver package itself uses).
PG_SYSTEM_USER = "pgserver"
# Longest unix socket path Linux accepts is 107 bytes; keep a margin.
_MAX_SOCKET_PATH = 100
# pg_hba.conf with a password: every connection, socket or loopback, proves it with SCRAM-SHA-256.
SCRAM_HBA = """# one-on-a-bus: every connection proves its password (SCRAM-SHA-256); loopback and the socket only
local   all          all                    scram-sha-256
host    all          all    127.0.0.1/32    scram-sha-256
host    all          all    ::1/128         scram-sha-256
local   replication  all                    scram-sha-256
host    replication  all    127.0.0.1/32    scram-sha-256
"""


@dataclass
class EmbeddedPostgres:
    """Postgres 16 + pgvector from the `pgserver` wheel, data in `data_dir`.

    `data_dir` is PGDATA itself; our extra files (`port`, `postgres.log`) live
    next to Postgres' own files. The server never listens beyond loopback.

    With a `password` (what `one up` runs), the superuser `postgres` has it and pg_hba.conf asks every
    connection for SCRAM-SHA-256 (`SCRAM_HBA`); a data directory made without one is switched over on its
    next start. Without (the test session's servers), auth is `trust`: anyone on this machine who can
    reach 127.0.0.1 is superuser.
    """

    data_dir: Path
    port: int = 0
    password: str | None = field(default=None, repr=False)
    reused: bool = field(default=False, init=False)  # start() found this server already running

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().absolute()

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("EmbeddedPostgres has no port yet; call start() first")
        login = f"postgres:{quote(self.password, safe='')}" if self.password else "postgres"
        return f"postgresql://{login}@{HOST}:{self.port}/postgres"

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
            self._require_passwords()
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
        self._require_passwords()
        return self.url

    def _require_passwords(self) -> None:
        """With a password: a server still on trust (a data dir from before) gets it and SCRAM-only pg_hba.conf.

        The password is set while trust still lets us in, then pg_hba.conf is replaced and reloaded."""
        hba = self.data_dir / "pg_hba.conf"
        if not self.password or hba.read_text() == SCRAM_HBA:
            return
        escaped = self.password.replace("'", "''")
        with self._readable_by_server(f"ALTER ROLE postgres PASSWORD '{escaped}';\n") as script:
            self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(self.port), "-U", "postgres",
                      "-d", "postgres", "-f", script)
        hba.write_text(SCRAM_HBA)  # truncated in place: it keeps its owner (the server user)
        self._run("pg_ctl", "-D", str(self.data_dir), "reload")

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

    def running_pid(self) -> int:
        """The postmaster's pid when one runs on this data_dir (whoever started it), 0 when none does."""
        pid = self._postmaster_pid()
        return pid if pid and pid_alive(pid) else 0

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
            [str(self.binary("pg_isready")), "-q", "-h", HOST, "-p", str(port), "-t", "5"],
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
        if self.password:  # SCRAM from the first start: never a moment on trust
            with self._readable_by_server(self.password + "\n") as pwfile:
                self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=scram-sha-256",
                          f"--pwfile={pwfile}", "--encoding=UTF8", "--no-locale")
            (self.data_dir / "pg_hba.conf").write_text(SCRAM_HBA)
        else:
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--no-locale")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# one-on-a-bus embedded defaults\n"
                f"listen_addresses = '{HOST}'\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
            )

    def binary(self, name: str) -> Path:
        """One of pgserver's Postgres programs (pg_dump, pg_restore, psql, ...)."""
        return _pg_bin_dir() / name

    @contextmanager
    def _readable_by_server(self, content: str) -> Iterator[str]:
        """A private temporary file (0600) the server user may read: a password never goes on a command line."""
        descriptor, path = tempfile.mkstemp(prefix="one-pg-")
        try:
            with os.fdopen(descriptor, "w") as out:
                out.write(content)
            if os.geteuid() == 0:
                user = _ensure_system_user(PG_SYSTEM_USER)
                os.chown(path, user.pw_uid, user.pw_gid)
            yield path
        finally:
            os.unlink(path)

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
                [str(self.binary(name)), *args], stdin=subprocess.DEVNULL, stdout=out,
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
