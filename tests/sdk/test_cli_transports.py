"""The CLI as a user with only a key runs it: over the local stack's bus, and over HTTP with just a URL and a key.

Each command runs in a subprocess (`python -m shared.tools.cli`) against the session's real stack; over HTTP the
environment has no NATS URL at all, only `ONE_URL` (or `--url`) and `ONE_API_KEY`.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, create_org  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("services")


def environment(transport: str, settings: Settings, gateway: str, key: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONE_", "NATS_", "DATABASE_"))}
    env |= {"ONE_API_KEY": key, "ONE_DATA_DIR": str(data_dir)}
    if transport == "bus":
        env["ONE_NATS_URL"] = settings.nats_url or ""
    else:
        env["ONE_URL"] = gateway
    return env


async def one(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "shared.tools.cli", *args], input=stdin,
                                   capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(params=["bus", "http"])
def cli_env(request: pytest.FixtureRequest, owner: Account, settings: Settings, gateway: str,
            tmp_path: Path) -> dict[str, str]:
    return environment(request.param, settings, gateway, owner.key, tmp_path)


async def test_whoami_publish_query_and_search(cli_env: dict[str, str], owner: Account) -> None:
    whoami = await one(cli_env, "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert str(owner.org_id) in whoami.stdout and str(owner.person_id) in whoami.stdout
    published = await one(cli_env, "publish", "--type", "content_viewed", "--meta", '{"source": "cli"}')
    assert published.returncode == 0, published.stderr
    event_id = json.loads(published.stdout)["id"]
    for _ in range(50):
        queried = await one(cli_env, "events", "query", "--type", "content_viewed", "--json")
        assert queried.returncode == 0, queried.stderr
        if queried.stdout.strip():
            break
        await asyncio.sleep(0.2)
    [event] = [json.loads(line) for line in queried.stdout.splitlines()]
    assert event["id"] == event_id and event["metadata"]["source"] == "cli"
    search = await one(cli_env, "knowledge", "search", "winter hives", "--json")
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)["hits"] == []


async def test_tail_follows_new_events(cli_env: dict[str, str]) -> None:
    tail = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-m", "shared.tools.cli", "events", "tail",
                                                      "--from-start", "--type", "user_login"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env)
    try:
        published = await one(cli_env, "publish", "--type", "user_login")
        assert published.returncode == 0, published.stderr
        line = await asyncio.wait_for(asyncio.to_thread(tail.stdout.readline), 60)  # type: ignore[union-attr]
        assert json.loads(line)["id"] == json.loads(published.stdout)["id"]
    finally:
        tail.send_signal(signal.SIGINT)
        await asyncio.to_thread(tail.wait, 30)


async def test_status_answers_over_both(cli_env: dict[str, str]) -> None:
    status = await one(cli_env, "status", "--json", "--timeout", "10")
    assert status.stdout.strip(), status.stderr
    assert set(json.loads(status.stdout)) >= {"tenancy", "graph", "eventlog", "knowledge"}, status.stderr


async def test_the_url_option_reaches_the_gateway(owner: Account, gateway: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONE_", "NATS_", "DATABASE_"))}
    env |= {"ONE_API_KEY": owner.key, "ONE_DATA_DIR": str(tmp_path)}
    whoami = await one(env, "--url", gateway, "whoami")
    assert whoami.returncode == 0 and str(owner.org_id) in whoami.stdout, whoami.stderr


@pytest.mark.parametrize("transport", ["bus", "http"])
async def test_a_garbage_key_is_refused_in_one_line(transport: str, settings: Settings, gateway: str,
                                                    tmp_path: Path) -> None:
    env = environment(transport, settings, gateway, "one_garbage_key", tmp_path)
    published = await one(env, "publish", "--type", "user_login")
    assert published.returncode != 0 and published.stderr.strip().count("\n") == 0, published.stderr
    assert "unauthenticated" in published.stderr


async def test_org_needs_a_platform_owner_s_key(settings: Settings, gateway: str, tmp_path: Path, bus: BusClient,
                                                platform: Account, owner: Account) -> None:  # noqa: F811
    victim = await create_org(bus, platform)
    as_owner = environment("bus", settings, gateway, owner.key, tmp_path)
    refused = await one(as_owner, "publish", "--type", "user_login", "--org", str(victim.org_id))
    assert refused.returncode != 0 and "forbidden" in refused.stderr and refused.stderr.strip().count("\n") == 0
    garbage = environment("bus", settings, gateway, "one_garbage_key", tmp_path)
    refused = await one(garbage, "publish", "--type", "user_login", "--org", str(victim.org_id))
    assert refused.returncode != 0 and "unauthenticated" in refused.stderr
    as_platform = environment("bus", settings, gateway, platform.key, tmp_path)
    allowed = await one(as_platform, "publish", "--type", "user_login", "--org", str(victim.org_id))
    assert allowed.returncode == 0, allowed.stderr
    page = await one(environment("bus", settings, gateway, victim.key, tmp_path), "events", "query", "--json",
                     "--type", "user_login")
    assert [json.loads(line)["id"] for line in page.stdout.splitlines()] == [json.loads(allowed.stdout)["id"]]


async def test_a_credentials_file_others_can_read_is_refused(settings: Settings, gateway: str, tmp_path: Path,
                                                             owner: Account) -> None:
    env = environment("bus", settings, gateway, "", tmp_path)
    del env["ONE_API_KEY"]
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"api_key": owner.key}))
    credentials.chmod(0o644)
    refused = await one(env, "whoami")
    assert refused.returncode != 0 and "chmod 600" in refused.stderr, refused.stderr
    credentials.chmod(0o600)
    allowed = await one(env, "whoami")
    assert allowed.returncode == 0 and str(owner.org_id) in allowed.stdout, allowed.stderr
