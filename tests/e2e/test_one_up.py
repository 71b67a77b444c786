"""`one up` on an empty data directory: the README's path, with real embedded servers."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from shared.contracts.tenancy import EMAIL_VERIFICATION_REQUEST
from shared.kernel import subjects
from shared.tools.embedded import free_port, port_is_free
from shared.tools.sdk import One
from shared.tools.stack import all_migrations
from tests.metrics_page import request_counts

ONE = [sys.executable, "-m", "shared.tools.cli"]


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL", "ONE_DATABASE_URL", "ONE_NATS_URL")}
    env["ONE_DATA_DIR"] = str(data_dir)
    env["COLUMNS"] = "300"  # rich tables unwrapped
    return env


def _status(data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*ONE, "status"], env=_env(data_dir), capture_output=True, text=True, timeout=60)


def _one(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ONE, *args], env=_env(data_dir), capture_output=True, text=True, timeout=60)


def _start(data_dir: Path, metrics_port: int = 0, gateway_port: int = 0) -> subprocess.Popen:
    env = {**_env(data_dir), "ONE_METRICS_PORT": str(metrics_port), "ONE_METRICS_HOST": "127.0.0.1",
           "ONE_GATEWAY_PORT": str(gateway_port or free_port())}  # not 8080: another stack may hold it
    return subprocess.Popen([*ONE, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _free_ports(n: int) -> int:
    """The first of `n` consecutive ports that are free right now (`one up` gives one to each child)."""
    while True:
        first = free_port()
        if first + n <= 65535 and all(port_is_free(first + i) for i in range(n)):
            return first


def _metrics_page(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


def _thing_over_http(port: int, api_key: str, thing_id: UUID) -> httpx.Response:
    """The thing, asked of the gateway `one up` started, with the platform owner's key."""
    return httpx.get(f"http://127.0.0.1:{port}/v1/things/{thing_id}", headers={"Authorization": f"Bearer {api_key}"},
                     timeout=10)


def _wait_healthy(data_dir: Path, up: subprocess.Popen, timeout: float = 180) -> subprocess.CompletedProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert up.poll() is None, up.stdout.read()
        if (data_dir / "runtime.json").exists():
            status = _status(data_dir)
            if status.returncode == 0:
                return status
        time.sleep(1)
    raise AssertionError(f"not healthy in {timeout}s: {_status(data_dir).stdout}")


def _stop(up: subprocess.Popen) -> str:
    up.send_signal(signal.SIGTERM)
    output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    return output


async def _migrations_applied_at(database_url: str) -> list:
    conn = await asyncpg.connect(database_url)
    try:
        return [await conn.fetchval(f"SELECT min(applied_at) FROM {s}.schema_migrations") for s in all_migrations()]
    finally:
        await conn.close()


async def _create_post(nats_url: str, api_key: str) -> UUID:
    """A blog post with text, created as the key's owner through the bus (the CLI has no graph commands)."""
    async with await One.connect(nats_url=nats_url, key=api_key, name="e2e") as one:
        content = "Bees cluster together in winter and shiver their flight muscles to keep the hive warm."
        post = await one.things.create("blog_post", "Wintering bees", properties={"content": content})
    return post.id


async def _ask_for_email_verification(nats_url: str, api_key: str) -> str:
    async with await One.connect(nats_url=nats_url, key=api_key, name="e2e") as one:
        return (await one.request(EMAIL_VERIFICATION_REQUEST)).email


def _wait_for_mailer(data_dir: Path, timeout: float = 30) -> None:
    """The mailer `one up` started is subscribed once its heartbeat is fresh."""
    deadline = time.monotonic() + timeout
    while _one(data_dir, "mailer", "--check").returncode != 0:
        assert time.monotonic() < deadline, (data_dir / "logs" / "mailer.log").read_text()
        time.sleep(0.5)


def _token_from_mail(data_dir: Path, address: str, timeout: float = 30) -> str:
    """The token in the .eml the mailer wrote (no ONE_SMTP_HOST under `one up`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (data_dir / "mail").glob("*.eml"):
            text = path.read_text()
            if f"To: {address}" in text:
                assert path.stat().st_mode & 0o777 == 0o600
                return re.search(r"one verify-email (ev_\S+)", text).group(1)
        time.sleep(0.5)
    raise AssertionError(f"no mail to {address} in {data_dir / 'mail'}")


@pytest.mark.timeout(300)
async def test_one_up_runs_seven_healthy_services_and_the_mailer_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    metrics_port = _free_ports(len(subjects.SERVICES) + 1)
    gateway_port = free_port()
    up = _start(data_dir, metrics_port, gateway_port)
    try:
        status = _wait_healthy(data_dir, up)
        for name in subjects.SERVICES:
            assert name in status.stdout
        runtime = json.loads((data_dir / "runtime.json").read_text())
        first = await _migrations_applied_at(runtime["database_url"])
        assert (data_dir / "mail").is_dir()  # before the first mail: a user can watch it

        second = _one(data_dir, "up", "--wait", "5")  # the same data directory: refused, nothing started or removed
        assert second.returncode == 7, second.stdout + second.stderr
        assert f"PID {up.pid}" in second.stderr and "in use" in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert json.loads((data_dir / "runtime.json").read_text()) == runtime
        assert _status(data_dir).returncode == 0  # the first one still runs and answers

        credentials = json.loads((data_dir / "credentials.json").read_text())
        assert (data_dir / "credentials.json").stat().st_mode & 0o777 == 0o600
        whoami = _one(data_dir, "whoami")
        assert whoami.returncode == 0, whoami.stdout + whoami.stderr
        assert credentials["org_id"] in whoami.stdout and "platform_owner" in whoami.stdout
        published = _one(data_dir, "publish", "--type", "payment_event", "--protocol", "x402",
                         "--meta", '{"protocol": "x402", "amount": 5, "currency": "USD", "status": "processed"}')
        assert published.returncode == 0, published.stdout + published.stderr
        post = await _create_post(runtime["nats_url"], credentials["api_key"])
        over_http = _thing_over_http(gateway_port, credentials["api_key"], post)
        assert over_http.status_code == 200 and over_http.json()["thing"]["name"] == "Wintering bees", over_http.text
        ingested = _one(data_dir, "knowledge", "ingest", str(post))
        assert ingested.returncode == 0 and str(post) in ingested.stdout, ingested.stdout + ingested.stderr
        found = _one(data_dir, "knowledge", "search", "how do hives survive winter")
        assert found.returncode == 0 and str(post) in found.stdout, found.stdout + found.stderr
        knowledge_port = metrics_port + subjects.SERVICES.index("knowledge")  # the order `one up` prints
        assert request_counts(_metrics_page(knowledge_port))[("knowledge", "knowledge.search", "ok")] >= 1

        _wait_for_mailer(data_dir)
        address = await _ask_for_email_verification(runtime["nats_url"], credentials["api_key"])
        verified = _one(data_dir, "verify-email", _token_from_mail(data_dir, address))
        assert verified.returncode == 0 and f"{address} verified" in verified.stdout, verified.stdout + verified.stderr
        mailer_page = _metrics_page(metrics_port + len(subjects.SERVICES))
        assert re.search(r'^one_mailer_sent_total\{purpose="[a-z_]+"\} [1-9]', mailer_page, re.M), mailer_page
    finally:
        output = _stop(up)
    assert "Stopped." in output
    assert re.search(r"NATS monitoring  http://127\.0\.0\.1:\d+", output), output
    assert f"http://127.0.0.1:{knowledge_port}/metrics" in output
    assert f"Gateway   http://127.0.0.1:{gateway_port}" in output
    assert credentials["api_key"] in output  # the key is shown once, on first start
    assert not (data_dir / "runtime.json").exists()
    assert _status(data_dir).returncode == 1  # nothing runs any more

    up = _start(data_dir)  # the same data directory again
    try:
        _wait_healthy(data_dir, up)
        runtime = json.loads((data_dir / "runtime.json").read_text())
        assert await _migrations_applied_at(runtime["database_url"]) == first  # same database, not re-created
        assert _one(data_dir, "whoami").returncode == 0  # the saved key still works
        history = _one(data_dir, "events", "query", "--type", "payment_event")
        assert history.returncode == 0 and "payment_event" in history.stdout, history.stdout + history.stderr
        revenue = _one(data_dir, "events", "revenue", "--json")  # the README's x402 payment (status: processed) counts
        assert revenue.returncode == 0, revenue.stdout + revenue.stderr
        assert [(r["protocol"], float(r["total"]), r["count"]) for r in json.loads(revenue.stdout)] == [("x402", 5.0, 1)]
    finally:
        output = _stop(up)
    assert credentials["api_key"] not in output  # not shown again
