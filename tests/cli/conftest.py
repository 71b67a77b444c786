"""The `one` command as a person types it: a subprocess against the session's real stack, as a verified key."""

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from shared.kernel.settings import Settings
from tests.tenancy.conftest import Account, create_org, owner  # noqa: F401 (fixtures)

ONE = [sys.executable, "-m", "shared.tools.cli"]
STRIPPED = ("ONE_URL", "ONE_API_KEY", "ONE_ORG", "DATABASE_URL", "NATS_URL")


def cli_env(settings: Settings, key: str | None, columns: int = 80, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    env |= {"ONE_NATS_URL": settings.nats_url, "ONE_DATABASE_URL": settings.database_url,
            "ONE_DATA_DIR": str(settings.data_dir), "COLUMNS": str(columns), "TERM": "dumb"}
    if key:
        env["ONE_API_KEY"] = key
    return env | extra


@dataclass
class Ran:
    """A finished `one` call: its exit code and output."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self
        return json.loads(self.out)

    def ok(self) -> str:
        assert self.code == 0, f"exit {self.code}\n{self.out}\n{self.err}"
        return self.out


@dataclass
class Cli:
    settings: Settings
    key: str | None = None

    def as_(self, account: "Account | None") -> "Cli":
        return Cli(self.settings, account.key if account else None)

    async def __call__(self, *args: str, columns: int = 80, stdin: str | None = None, _python: bool = False,
                       **env: str) -> Ran:
        """`one *args` (`_python`: `python *args`, in the same environment)."""
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, *args] if _python else [*ONE, *args], input=stdin, capture_output=True,
            text=True, timeout=120,
            env=cli_env(self.settings, self.key, columns, **env))
        return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def one(services: dict, migrated: Settings, owner: "Account") -> Cli:
    """`await one("things", "query")`: the CLI as the owner of a fresh org."""
    return Cli(migrated, owner.key)


def one_line_error(ran: Ran, code: int, *words: str) -> None:
    """The failure convention: the exit code, and one line on stderr naming the problem."""
    assert ran.code == code, f"exit {ran.code}, wanted {code}\n{ran.out}\n{ran.err}"
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    for word in words:
        assert word in lines[0], lines[0]
