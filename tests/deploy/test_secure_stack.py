"""`one up` is secure by default, on a real embedded stack: its nats-server runs deploy/nats/nats-server.conf with
passwords generated into the data directory (0600), each child logs in as itself and is refused the rest, the CLI
has its own restricted user, Postgres wants SCRAM passwords, nothing listens beyond loopback; and a child killed
with SIGKILL is restarted (with backoff) and healthy again."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.errors import Error as NatsError

from services.tenancy.mailer import heartbeat_is_fresh
from services.tenancy.settings import TenancySettings
from shared.kernel import subjects
from shared.kernel.settings import Settings
from shared.tools.embedded import EmbeddedPostgres
from shared.tools.embedded.postgres import SCRAM_HBA
from shared.tools.stack import NATS_USERS, fetch_health
from shared.tools.stack_secrets import StackSecrets
from shared.tools.stack_supervisor import Child, RestartPolicy, Supervisor
from tests.deploy.embedded_stack import CHILDREN, Stack, mode, run_one

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("secure-stack") / "data")
    try:
        yield await running.start()
    finally:
        await running.stop()


async def _connect(url: str, user: str | None = None, password: str | None = None, errors: list | None = None):
    async def on_error(error: Exception) -> None:
        if errors is not None:
            errors.append(str(error).lower())

    return await nats.connect(url, user=user, password=password, error_cb=on_error, allow_reconnect=False,
                              connect_timeout=3, max_reconnect_attempts=0)


async def test_the_passwords_are_generated_once_into_private_files(stack: Stack) -> None:
    for name in ("secrets.json", "credentials.json", "runtime.json"):
        assert mode(stack.data_dir / name) == 0o600, name
    secrets = StackSecrets.existing(stack.data_dir)
    assert set(secrets.nats) == set(NATS_USERS)
    every = [*secrets.nats.values(), secrets.postgres_superuser, secrets.postgres_app]
    assert len(set(every)) == len(every) and all(len(p) >= 40 for p in every)  # one each, none shared
    assert StackSecrets.ensure(stack.data_dir, NATS_USERS) == secrets  # a later start reuses them
    (stack.data_dir / "secrets.json").chmod(0o644)
    try:
        with pytest.raises(Exception, match="readable by others"):
            StackSecrets.existing(stack.data_dir)
    finally:
        (stack.data_dir / "secrets.json").chmod(0o600)


async def test_a_connection_without_credentials_or_with_a_wrong_password_is_refused(stack: Stack) -> None:
    with pytest.raises(NatsError, match="(?i)authorization"):
        await _connect(stack.settings.nats_url)
    with pytest.raises(NatsError, match="(?i)authorization"):
        await _connect(stack.settings.nats_url, "graph", stack.secrets.nats["tenancy"])  # another user's password


async def test_each_child_is_refused_outside_its_own_subjects(stack: Stack) -> None:
    """With the very passwords its children got: every service may listen to its own subjects, not its neighbour's,
    and none but tenancy may send tenancy's key-cache broadcast."""
    for n, user in enumerate(CHILDREN):
        errors: list[str] = []
        nc = await _connect(stack.settings.nats_url, user, stack.secrets.nats[user], errors)
        other = subjects.SERVICES[(n + 1) % len(subjects.SERVICES)]
        await nc.subscribe(f"one.{other}.>")
        if user != "tenancy":
            await nc.publish("one.tenancy.keys.invalidate", b"{}")
        await nc.flush()
        deadline = time.monotonic() + 5
        expected = 1 if user == "tenancy" else 2
        while len([e for e in errors if "permissions violation" in e]) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await nc.close()
        violations = " ".join(errors)
        assert f'subscription to "one.{other}.>"' in violations, (user, errors)
        if user != "tenancy":
            assert 'publish to "one.tenancy.keys.invalidate"' in violations, (user, errors)


async def test_the_cli_logs_in_as_its_own_restricted_user(stack: Stack) -> None:
    status = run_one(stack.data_dir, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    whoami = run_one(stack.data_dir, "whoami")
    assert whoami.returncode == 0 and "platform_owner" in whoami.stdout, whoami.stdout + whoami.stderr
    runtime = json.loads((stack.data_dir / "runtime.json").read_text())
    assert runtime["nats_url"].startswith(f"nats://cli:{stack.secrets.nats['cli']}@127.0.0.1:")
    errors: list[str] = []
    cli = await _connect(runtime["nats_url"], errors=errors)  # the login in the URL, as the CLI uses it
    await cli.subscribe("one.graph.>")  # the CLI serves nothing
    await cli.flush()
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await cli.close()
    assert any('subscription to "one.graph.>"' in e for e in errors), errors


async def test_postgres_wants_each_roles_password(stack: Stack) -> None:
    port = stack.servers.postgres.port
    app = f"postgresql://one_app:{stack.secrets.postgres_app}@127.0.0.1:{port}/postgres"
    conn = await asyncpg.connect(app)
    try:
        assert await conn.fetchval("SELECT current_user") == "one_app"
    finally:
        await conn.close()
    for refused in (f"postgresql://one_app:wrong@127.0.0.1:{port}/postgres",
                    f"postgresql://one_app@127.0.0.1:{port}/postgres",
                    f"postgresql://postgres@127.0.0.1:{port}/postgres",
                    f"postgresql://postgres:{stack.secrets.postgres_app}@127.0.0.1:{port}/postgres"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(refused)
    hba = (stack.data_dir / "postgres" / "pg_hba.conf").read_text()
    assert "trust" not in hba and "scram-sha-256" in hba


def _listening() -> dict[int, set[str]]:
    """Every listening TCP socket of this machine: port -> the addresses it is bound to (from /proc/net/tcp*)."""
    found: dict[int, set[str]] = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address, port = fields[1].split(":")
            found.setdefault(int(port, 16), set()).add(address if width == 32 else
                                                       ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


async def test_nothing_listens_beyond_loopback(stack: Stack) -> None:
    runtime = json.loads((stack.data_dir / "runtime.json").read_text())
    ports = {
        "postgres": stack.servers.postgres.port,
        "nats": stack.servers.nats.port,
        "nats monitoring": int(runtime["nats_monitor"].rsplit(":", 1)[1]),
        "gateway": stack.gateway_port,
        **{f"metrics of {name}": port for name, port in stack.supervisor.metrics_ports().items()},
    }
    listening = _listening()
    for what, port in ports.items():
        assert listening.get(port) == {"127.0.0.1"}, f"{what} (port {port}) listens on {listening.get(port)}"


async def test_a_child_killed_with_sigkill_is_restarted_and_healthy_again(stack: Stack, caplog) -> None:
    caplog.set_level("WARNING", logger="shared.tools.stack")
    killed = stack.supervisor.children["graph"].process
    os.kill(killed.pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while stack.supervisor.children["graph"].process is killed:
        assert time.monotonic() < deadline, "graph was not restarted"
        await asyncio.sleep(0.1)
    while not getattr((await fetch_health(stack.settings, 1.0, ("graph",)))["graph"], "healthy", False):
        assert time.monotonic() < deadline, stack.log("graph")[-2000:]
        await asyncio.sleep(0.3)
    assert stack.supervisor.children["graph"].restarts == 1
    said = caplog.text
    assert "graph exited with exit code -9 (SIGKILL)" in said and "restarting in 0.2 s" in said, said


def test_restarts_back_off_up_to_the_cap_and_start_over_after_a_stable_run(tmp_path: Path, caplog) -> None:
    """Real children that exit at once (exit code 3); the clock is the supervisor's own, advanced by the test, and
    the restart is never due, so only the schedule is seen: 1, 2, 4, 8, 8, then 1 after a run of 100 s."""
    caplog.set_level("WARNING", logger="shared.tools.stack")
    now = [0.0]
    supervisor = Supervisor(Settings(data_dir=tmp_path), policy=RestartPolicy(1.0, 8.0, stable_after=60.0),
                            clock=lambda: now[0])
    delays = []
    for ran in (1, 1, 1, 1, 1, 100):
        dying = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        dying.wait()
        before = supervisor.children.get("graph")
        supervisor.children["graph"] = Child(dying, now[0], before.deaths_in_a_row if before else 0)
        now[0] += ran
        assert supervisor.restart_dead() == []  # not yet: the delay has just begun
        delays.append(supervisor.children["graph"].restart_at - now[0])
    assert delays == [1, 2, 4, 8, 8, 1]
    assert caplog.text.count("graph exited with exit code 3") == 6


async def test_a_data_directory_made_with_trust_gets_passwords_on_its_next_start(tmp_path: Path) -> None:
    """A data directory from before secure-by-default (initdb with trust): the next start sets the superuser's
    password while trust still lets it in, then replaces pg_hba.conf with SCRAM only and reloads."""
    before = EmbeddedPostgres(tmp_path / "pg")
    open_url = before.start()
    before.stop()
    after = EmbeddedPostgres(tmp_path / "pg", password="p-upgraded")
    try:
        conn = await asyncpg.connect(after.start())
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(open_url)  # no password: refused now
        assert (tmp_path / "pg" / "pg_hba.conf").read_text() == SCRAM_HBA
    finally:
        after.stop()


async def test_the_mailer_subscribes_with_its_own_user(stack: Stack) -> None:
    """The mailer answers no health request (it may publish nothing): its heartbeat says it subscribed."""
    deadline = time.monotonic() + 60
    while not heartbeat_is_fresh(TenancySettings(data_dir=stack.data_dir)):
        assert time.monotonic() < deadline, stack.log("mailer")[-2000:]
        await asyncio.sleep(0.3)
    assert stack.supervisor.children["mailer"].process.poll() is None
