"""The CLI's conventions without a stack: version, completion, one-line errors, tables at 80 columns, the
documented commands and exit codes, and `one up`'s lock on its data directory."""

import io
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import typer
from rich.console import Console

from shared import __version__
from shared.kernel.errors import Conflict, NotFound, Unavailable
from shared.kernel.settings import Settings
from shared.tools.cli import app
from shared.tools.cli_output import EXIT_CODES, Column, explain, print_table
from shared.tools.stack import DataDirBusy, DataDirLock, remove_runtime
from tests.cli.conftest import ONE

ROOT = Path(__file__).parents[2]


def run_one(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ONE_", "NATS_URL", "DATABASE_URL"))}
    return subprocess.run([*ONE, *args], capture_output=True, text=True, timeout=120,
                          env={**base, "ONE_DATA_DIR": str(tmp_path), "COLUMNS": "80", **env})


def test_version_and_completion(tmp_path: Path) -> None:
    assert run_one("--version", tmp_path=tmp_path).stdout.strip() == f"one {__version__}"
    script = Path(sys.executable).with_name("one")  # completion is keyed by the program's name: the installed script
    completed = subprocess.run([str(script)], capture_output=True, text=True, timeout=120, env={
        **os.environ, "_ONE_COMPLETE": "complete_bash", "COMP_WORDS": "one things cr", "COMP_CWORD": "2"})
    assert completed.stdout.split() == ["create"], completed


def test_bad_json_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = run_one("publish", "--type", "user_login", "--meta", "{bad", tmp_path=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad
    assert "--meta is not valid JSON" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_one("things", "create", "course", "X", "-p", f"@{tmp_path}/nope.json", tmp_path=tmp_path)
    assert missing.returncode == 2 and "cannot read" in missing.stderr, missing


def test_nothing_running_is_one_line(tmp_path: Path) -> None:
    ran = run_one("status", tmp_path=tmp_path)
    assert ran.returncode == 1 and ran.stderr.strip() == "error: nothing is running -- start it with `make run` (or set NATS_URL)"


def test_errors_explain_themselves_with_a_code_and_an_exit_code() -> None:
    assert explain(NotFound("thing 1 not found")) == (
        "not_found: thing 1 not found -- check the id (list them with the matching `one ... list|query` command)", 5)
    assert explain(Conflict("changed"))[1] == 7
    assert explain(Unavailable("no answer"))[1] == 9
    assert explain(ConnectionRefusedError(111, "refused"))[1] == 9
    with pytest.raises(ZeroDivisionError):  # a bug in the CLI is not dressed up as a user error
        explain(ZeroDivisionError("bug"))


def test_tables_fit_80_columns_with_every_id_whole() -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    long_text = "a long name that has to wrap " * 4
    for columns in ([Column("id", "id"), Column("type"), Column("name", "text")],  # a table
                    [Column("id", "id"), Column("type"), Column("name", "text"), Column("other", "id")]):  # details
        console = Console(width=80, record=True, file=io.StringIO())
        print_table(columns, [[i, "blog_post", long_text, i][: len(columns)] for i in ids], out=console)
        text = console.export_text()
        assert all(len(line) <= 80 for line in text.splitlines()), text
        for i in ids:
            assert re.search(rf"(^|\s){i}(\s|$)", text, re.MULTILINE), text


def test_docs_list_every_command_and_exit_code() -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    group = typer.main.get_command(app)
    context = typer.Context(group)
    for name in group.list_commands(context):
        assert f"`one {name}" in docs, name
        command = group.get_command(context, name)
        for sub in getattr(command, "commands", {}):
            if not command.commands[sub].hidden:
                assert re.search(rf"`{sub}[ `]", docs), f"one {name} {sub}"
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} \|", docs, re.MULTILINE), code


HOLD_LOCK = """
import sys, time
from pathlib import Path
from shared.tools.stack import DataDirLock
DataDirLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(600)
"""


def test_one_up_lock_refuses_a_second_owner_and_takes_over_from_a_dead_one(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DataDirBusy) as busy:
            DataDirLock.acquire(tmp_path)
        assert busy.value.pid == holder.pid
        refused = run_one("up", "--wait", "1", tmp_path=tmp_path)
        assert refused.returncode == 7 and f"PID {holder.pid}" in refused.stderr, refused
        assert not (tmp_path / "postgres").exists()  # refused before starting anything
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without cleaning up: its PID stays in the file
        holder.wait()
    lock = DataDirLock.acquire(tmp_path)
    try:
        assert lock.stale_pid == holder.pid
        assert (tmp_path / "one-up.lock").read_text().strip() == str(os.getpid())
    finally:
        lock.release()
    assert DataDirLock.acquire(tmp_path).stale_pid is None  # released cleanly: nothing stale


def test_runtime_file_is_removed_only_by_its_owner(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.runtime_file.write_text('{"pid": 1}')
    assert not remove_runtime(settings) and settings.runtime_file.exists()
    settings.runtime_file.write_text(f'{{"pid": {os.getpid()}}}')
    assert remove_runtime(settings) and not settings.runtime_file.exists()
