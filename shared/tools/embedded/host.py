"""The local machine both embedded servers run on: loopback ports, process liveness, log tails.

Each server keeps its chosen port and pid in its ``data_dir`` so a later ``start()`` can find and
reuse it; these helpers decide whether a saved port is still free and a saved pid still a server.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``port`` of 127.0.0.1 right now."""
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


def choose_port(port_file: Path, requested: int, avoid: int = 0) -> int:
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


def read_port(port_file: Path) -> int:
    """The port an earlier start saved in ``port_file``, 0 if there is none."""
    try:
        return int(port_file.read_text().strip())
    except (OSError, ValueError):
        return 0


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a server log, for the error raised when the server fails to start."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def pid_exists(pid: int) -> bool:
    """True for any process with this pid, zombies included (what kill(0) sees)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def pid_alive(pid: int) -> bool:
    """True for a running process with this pid (a zombie is not running)."""
    if not pid_exists(pid):
        return False
    # A zombie still "exists" for kill(0) but is no server any more.
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rsplit(")", 1)[-1].split()[0] != "Z"
