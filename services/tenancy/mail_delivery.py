"""What the mailer accepts from the mail drop, the email it makes of it, and the two ways it sends one.

The drop (`one.notify.email`) carries a secret token, so nothing here puts a
message's content into an exception or a log line: a malformed drop is described
by the names of its bad fields only (pydantic's own messages quote the input).

SMTP failures are sorted into transient (no connection, a dropped connection, a
4xx reply: retry later) and permanent (a 5xx reply, a certificate that does not
verify, a server without STARTTLS: retrying cannot help), so the mailer retries
only what may succeed.
"""

import asyncio
import os
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from services.tenancy.schemas import MailDrop
from services.tenancy.settings import TenancySettings
from shared.contracts.tenancy import MEMBER_ACCEPT
from shared.kernel.ids import uuid7

PRODUCT = "ONE"


class MalformedDrop(Exception):
    """The drop message is not one the mailer can send; the message says which fields, never their values."""


def parse_drop(data: bytes) -> MailDrop:
    try:
        return MailDrop.model_validate_json(data)
    except ValidationError as error:
        fields = sorted({".".join(str(part) for part in e["loc"]) or "(message)" for e in error.errors()})
        raise MalformedDrop(f"not a mail drop message: bad or missing {', '.join(fields)}") from None


def _verification_text(drop: MailDrop) -> tuple[str, str]:
    assert drop.expires_at is not None  # MailDrop's validator: a token mail has its expiry
    expires = drop.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = f"""Hello,

someone asked to verify this email address ({drop.to}) for {PRODUCT}.
If it was you, confirm it with this token. It works once, until {expires}:

    {drop.token}

With the `one` command:

    one verify-email {drop.token}

or send it as `token` in a tenancy.email.verify request (NATS subject
one.tenancy.email.verify; it needs no API key).

If you did not ask for this, ignore this email: nothing changes unless the
token is used. Ask for a new token if this one has expired.
"""
    return f"Verify your email address for {PRODUCT}", body


def _invitation_text(drop: MailDrop) -> tuple[str, str]:
    assert drop.expires_at is not None  # MailDrop's validator: a token mail has its expiry
    expires = drop.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    organization = " ".join((drop.organization or "an organization").split())  # one line: it goes in the subject
    role = f" as {drop.role}" if drop.role else ""
    body = f"""Hello,

you are invited to join {organization} on {PRODUCT}{role}.
This address ({drop.to}) already has a {PRODUCT} account, so the invitation
comes to you and not to whoever sent it. To accept, use this token. It works
once, until {expires}:

    {drop.token}

Send it as `token` in a {MEMBER_ACCEPT.type} request (NATS subject
{MEMBER_ACCEPT.subject}; it needs no API key: the token is the proof). The
reply holds a new API key for {organization}.

If you do not want to join, ignore this email: nothing changes unless the
token is used. Ask for a new invitation if this one has expired.
"""
    return f"You are invited to join {organization} on {PRODUCT}", body


def _reminder_text(drop: MailDrop) -> tuple[str, str]:
    """A reminder (services/tenancy/notify_email.py): its own subject and text; no token, nothing to do in ONE."""
    subject = " ".join((drop.subject or "Reminder").split())  # one line: it goes in the subject
    body = f"""Hello,

{drop.message}

This is a reminder {PRODUCT} sent to {drop.to} because it was set for you.
"""
    return subject, body


_TEMPLATES = {"email_verification": _verification_text, "invitation": _invitation_text, "reminder": _reminder_text}


def render(drop: MailDrop, sender: str) -> EmailMessage:
    """A plain-text email, marked auto-generated (RFC 3834) so auto-responders stay quiet.

    Its lines stay far below SMTP's 998-character limit, so an ASCII body goes as
    7bit: the token stays on one line in the raw .eml a developer reads
    (quoted-printable would wrap it).
    """
    subject, body = _TEMPLATES[drop.purpose](drop)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = drop.to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(body, cte="7bit" if body.isascii() else None)
    return mail


class DeliveryFailed(Exception):
    """A mail was not delivered; `transient` when a later attempt may succeed. Never carries the mail."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.transient = transient


def _smtp_failure(error: Exception) -> DeliveryFailed:
    """Sort a failure from smtplib or the socket under it into transient or permanent."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return DeliveryFailed(f"recipient refused ({', '.join(map(str, codes))})",
                              transient=all(400 <= code < 500 for code in codes))
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
        return DeliveryFailed(f"{type(error).__name__} {error.smtp_code} {text[:200]}",
                              transient=not 500 <= error.smtp_code < 600)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DeliveryFailed(f"the server closed the connection: {error}", transient=True)
    if isinstance(error, ssl.SSLCertVerificationError | smtplib.SMTPNotSupportedError):
        return DeliveryFailed(f"{type(error).__name__}: {error} (check the ONE_SMTP_* settings)", transient=False)
    if isinstance(error, OSError):  # refused, unreachable, timed out, name not resolved, TLS handshake
        return DeliveryFailed(f"{type(error).__name__}: {error}", transient=True)
    return DeliveryFailed(f"{type(error).__name__}: {error}", transient=False)


class Transport(Protocol):
    async def send(self, mail: EmailMessage) -> str:
        """Deliver `mail`; returns where it went (for the log), raises `DeliveryFailed`."""
        ...


class SmtpTransport:
    """One SMTP session per mail (stdlib smtplib, in a thread): mails are rare, a held connection would go stale."""

    def __init__(self, settings: TenancySettings) -> None:
        self.settings = settings

    async def send(self, mail: EmailMessage) -> str:
        await asyncio.to_thread(self._send, mail)
        return f"smtp {self.settings.smtp_host}:{self.settings.smtp_port}"

    def _send(self, mail: EmailMessage) -> None:
        s = self.settings
        context = ssl.create_default_context()
        try:
            if s.smtp_implicit_tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            with smtp:
                if s.smtp_starttls and not s.smtp_implicit_tls:
                    smtp.starttls(context=context)
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value() if s.smtp_password else "")
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as error:
            raise _smtp_failure(error) from None


class FileTransport:
    """Without an SMTP server (`one up`): each mail becomes an .eml file only its owner can read (0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, mail: EmailMessage) -> str:
        return str(await asyncio.to_thread(self._write, mail.as_bytes()))

    def _write(self, data: bytes) -> Path:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self.directory / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid7().hex[-12:]}.eml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
        except OSError as error:
            raise DeliveryFailed(f"cannot write to {self.directory}: {error.strerror}", transient=True) from None
        return path


def transport_for(settings: TenancySettings) -> Transport:
    return SmtpTransport(settings) if settings.smtp_host else FileTransport(settings.mail_path)
