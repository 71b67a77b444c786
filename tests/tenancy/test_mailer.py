"""The mailer adapter against real NATS and a real SMTP server (aiosmtpd): delivery, the .eml fallback, bad drops, failures."""

import asyncio
import email
import email.policy
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from aiosmtpd.controller import Controller
from nats.aio.client import Client as NatsClient

from services.tenancy.mail_delivery import SmtpTransport
from services.tenancy.mailer import (
    Mailer,
    heartbeat_is_fresh,
    heartbeat_path,
    keep_heartbeat,
)
from services.tenancy.schemas import MAIL_DROP_SUBJECT
from services.tenancy.settings import TenancySettings
from shared.contracts.tenancy import EMAIL_VERIFICATION_REQUEST, EMAIL_VERIFY, PERSON_ME
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.bus import connect_options
from shared.runtime.client import BusClient
from shared.tools.embedded import free_port
from tests.polling import until
from tests.tenancy.conftest import Account

pytestmark = pytest.mark.usefixtures("services")

TOKEN = re.compile(r"one verify-email (ev_[0-9a-f]{32}_[A-Za-z0-9]{32})")


class Inbox:
    """An aiosmtpd handler that keeps what it accepts and refuses the addresses in `refuse` with a 550."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in self.envelopes if e.rcpt_tos == [address]]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@asynccontextmanager
async def running_mailer(settings: Settings, subject: str = MAIL_DROP_SUBJECT, **overrides: Any) -> AsyncIterator[Mailer]:
    """A mailer on its own connection, failing fast: retries 10 ms apart, no STARTTLS (aiosmtpd offers none here)."""
    settings = TenancySettings(**{**settings.model_dump(), "smtp_starttls": False, "mail_retry_delay": 0.01,
                                  "smtp_timeout": 5.0, **overrides})
    connection = await nats.connect(**connect_options(settings, "test-mailer"))
    mailer = Mailer(settings, subject=subject)
    await mailer.start(connection)
    try:
        yield mailer
    finally:
        await mailer.stop()
        await connection.drain()


def drop(to: str, token: str | None = None, **fields: Any) -> bytes:
    token = token or f"ev_{uuid7().hex}_{'A1b2C3d4' * 4}"
    expires_at = (datetime.now(UTC) + timedelta(hours=24)).isoformat()
    return json.dumps({"to": to, "purpose": "email_verification", "token": token, "expires_at": expires_at, **fields}).encode()


async def test_a_verification_request_reaches_the_smtp_server_and_its_token_verifies(
    bus: BusClient, owner: Account, settings: Settings, smtp: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp
    caplog.set_level(logging.INFO, logger="services.tenancy.mailer")
    async with running_mailer(settings, smtp_host="127.0.0.1", smtp_port=port) as mailer:
        address = (await bus.request(PERSON_ME, {}, owner.ctx)).email
        sent = await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)
        [mail] = await until(lambda: inbox.mails_to(address))
    assert mail["To"] == address and mail["From"] == mailer.settings.mail_from
    assert mail["Subject"] == "Verify your email address for ONE" and mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert sent.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") in body
    token = TOKEN.search(body).group(1)
    assert token in body.split("one verify-email")[0]  # also on a line of its own, to copy
    verified = await bus.request(EMAIL_VERIFY, {"token": token})
    assert (verified.person_id, verified.email) == (owner.person_id, address)
    assert mailer.stats.sent == 1 and mailer.stats.failed == mailer.stats.malformed == 0
    assert f"email_verification mail to {address}: smtp 127.0.0.1:{port}" in caplog.text
    assert token not in caplog.text


async def test_without_an_smtp_host_each_mail_is_an_eml_file_only_its_owner_can_read(
    settings: Settings, nc: NatsClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.tenancy.mailer")
    subject, token = f"test.mail.{uuid7().hex}", f"ev_{uuid7().hex}_{'Zz09' * 8}"
    async with running_mailer(settings, subject, smtp_host=None, mail_dir=tmp_path / "mail") as mailer:
        await nc.publish(subject, drop("dev@example.test", token))
        await until(lambda: mailer.stats.sent == 1)
    [path] = (tmp_path / "mail").glob("*.eml")
    assert path.stat().st_mode & 0o777 == 0o600
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "dev@example.test"
    assert f"one verify-email {token}" in mail.get_content()
    assert f"one verify-email {token}\n".encode() in path.read_bytes()  # the raw file too: not wrapped by an encoding
    assert str(path) in caplog.text and token not in caplog.text


async def test_an_invitation_mail_names_the_org_and_how_to_accept(
    settings: Settings, nc: NatsClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.tenancy.mailer")
    subject, token = f"test.mail.{uuid7().hex}", f"inv_{uuid7().hex}_{'Zz09' * 8}"
    async with running_mailer(settings, subject, smtp_host=None, mail_dir=tmp_path / "mail") as mailer:
        await nc.publish(subject, drop("back@example.test", token, purpose="invitation",
                                       organization="Acme\nLabs (acme)", role="customer"))
        await until(lambda: mailer.stats.sent == 1)
    [path] = (tmp_path / "mail").glob("*.eml")
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["Subject"] == "You are invited to join Acme Labs (acme) on ONE"  # one line, whatever the org's name
    body = mail.get_content()
    assert "join Acme Labs (acme) on ONE as customer" in body and f"    {token}\n" in body
    assert "tenancy.member.accept" in body and "one.tenancy.members.accept" in body
    assert "invitation mail to back@example.test" in caplog.text and token not in caplog.text


async def test_a_malformed_drop_is_skipped_and_the_next_one_is_still_delivered(
    settings: Settings, nc: NatsClient, smtp: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp
    subject, secret = f"test.mail.{uuid7().hex}", "ev_" + "s3cr3t" * 40  # too long to be a token
    async with running_mailer(settings, subject, smtp_host="127.0.0.1", smtp_port=port) as mailer:
        await nc.publish(subject, b"not json at all")
        await nc.publish(subject, drop("not an address"))
        await nc.publish(subject, drop("someone@example.test", purpose="password_reset"))
        await nc.publish(subject, drop("someone@example.test", secret))
        await nc.publish(subject, drop("next@example.test"))
        await until(lambda: inbox.mails_to("next@example.test"))
    assert (mailer.stats.malformed, mailer.stats.sent) == (4, 1)
    assert not inbox.mails_to("someone@example.test")
    skipped = [r.getMessage() for r in caplog.records if "skipped a drop message" in r.getMessage()]
    assert len(skipped) == 4 and any("bad or missing to" in s for s in skipped) and any("purpose" in s for s in skipped)
    assert "s3cr3t" not in caplog.text


async def test_smtp_down_is_retried_then_counted_as_failed_and_the_mailer_keeps_going(
    settings: Settings, nc: NatsClient, smtp: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp
    subject, token = f"test.mail.{uuid7().hex}", f"ev_{uuid7().hex}_{'Qq77' * 8}"
    async with running_mailer(settings, subject, smtp_host="127.0.0.1", smtp_port=free_port(), mail_retries=3) as mailer:
        await nc.publish(subject, drop("lost@example.test", token))
        await until(lambda: mailer.stats.failed == 1)
        assert mailer.stats.retries == 3 and mailer.stats.sent == 0
        [failure] = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "services.tenancy.mailer"]
        assert "lost@example.test NOT delivered, gave up after retries (4 attempts)" in failure.getMessage()
        assert token not in caplog.text

        mailer.transport = SmtpTransport(mailer.settings.model_copy(update={"smtp_port": port}))  # the server is back
        await nc.publish(subject, drop("later@example.test"))
        await until(lambda: inbox.mails_to("later@example.test"))
    assert mailer.stats.sent == 1


async def test_a_permanent_refusal_is_not_retried(
    settings: Settings, nc: NatsClient, smtp: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp
    inbox.refuse.add("gone@example.test")
    subject = f"test.mail.{uuid7().hex}"
    async with running_mailer(settings, subject, smtp_host="127.0.0.1", smtp_port=port) as mailer:
        await nc.publish(subject, drop("gone@example.test"))
        await until(lambda: mailer.stats.failed == 1)
    assert mailer.stats.retries == 0
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "services.tenancy.mailer"]
    assert "permanent failure (1 attempts): recipient refused (550)" in failure.getMessage()


async def test_the_heartbeat_follows_nats_round_trips(settings: Settings, tmp_path: Path) -> None:
    settings = TenancySettings(**{**settings.model_dump(), "data_dir": tmp_path, "mailer_heartbeat_interval": 0.2})
    assert not heartbeat_is_fresh(settings)
    connection = await nats.connect(**connect_options(settings, "test-heartbeat"))
    beat = asyncio.create_task(keep_heartbeat(connection, settings))
    try:
        await until(lambda: heartbeat_is_fresh(settings))
    finally:
        beat.cancel()
        await connection.drain()
    stale = time.time() - 1.0
    os.utime(heartbeat_path(settings), (stale, stale))
    assert not heartbeat_is_fresh(settings)


def _mailer_on_its_own(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.tenancy.mailer ...` with the environment alone: no `one` CLI, no stack's runtime.json."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONE_") and k not in {"DATABASE_URL", "NATS_URL"}}
    env["ONE_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "services.tenancy.mailer", *arguments], env=env,
                          capture_output=True, text=True, timeout=60)


async def test_the_mailer_has_an_entry_of_its_own_that_probes_and_refuses_to_run_without_nats(tmp_path: Path) -> None:
    assert (await asyncio.to_thread(_mailer_on_its_own, tmp_path, "--check")).returncode == 1  # no heartbeat yet
    heartbeat_path(Settings(data_dir=tmp_path)).touch()
    assert (await asyncio.to_thread(_mailer_on_its_own, tmp_path, "--check")).returncode == 0
    without_nats = await asyncio.to_thread(_mailer_on_its_own, tmp_path)
    assert without_nats.returncode == 1 and "set ONE_NATS_URL" in without_nats.stderr, without_nats.stderr
