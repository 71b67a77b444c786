"""Reminders delivered by email (issue #24): a fired reminder's person-email notice goes to tenancy, which mails
the recipient when they are a person of the reminder's org — through the mailer's drop, to a real SMTP server
(aiosmtpd) — exactly once; a person of another org is never mailed."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from services.tenancy.schemas import MailDrop
from shared.contracts.graph import IDENTITY_BACKFILL, THING_CREATE, THING_GET
from shared.contracts.notify import PERSON_EMAIL_SUBJECT, PersonEmailNotice
from shared.contracts.scheduling import MEETING_SCHEDULE, REMINDER_CREATE
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.polling import until, until_async
from tests.tenancy.conftest import Account
from tests.tenancy.test_mailer import Inbox, running_mailer, smtp  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("services")

MEETING_LEAD = 10.0
"""Seconds ahead a meeting's reminder is due, so scheduling (graph thing, links, reminders) is done before it."""
ARRIVAL = 10.0
"""Seconds after its time within which the mail must reach the SMTP server (fired within a second: h6's tests;
the rest is NATS, tenancy's transaction, the mailer and SMTP on a loaded machine)."""
QUIET = 2.0
"""Seconds the test keeps listening after the mail arrived (or should have), for a duplicate or a leak."""


async def _email_events(runtime: ServiceRuntime, org_id: UUID, reminder_id: UUID) -> list[dict[str, Any]]:
    """Tenancy's `notification_event`s about the reminder (its outbox: envelopes as published)."""
    async with runtime.db.transaction() as session:
        rows = (await session.execute(sa.text(
            "SELECT convert_from(envelope, 'UTF8') FROM tenancy.outbox WHERE subject LIKE :subject ORDER BY created_at"),
            {"subject": f"%.{org_id}.notification_event"})).scalars().all()
    events = [json.loads(row)["payload"] for row in rows]
    return [e for e in events if e["metadata"].get("reminderId") == str(reminder_id)]


async def _person_thing(bus: BusClient, account: Account) -> None:
    """The person's graph thing (tenancy's identity, same id), which a meeting links as a participant: mirrored by
    the graph's backfill (the test stack runs no identity consumer)."""
    await bus.request(IDENTITY_BACKFILL, {}, account.ctx, timeout=60)
    assert (await bus.request(THING_GET, {"id": str(account.person_id)}, account.ctx)).thing.id == account.person_id


async def test_a_meeting_reminder_reaches_the_participants_inbox_once_within_seconds(
    bus: BusClient, owner: Account, settings: Settings, smtp: tuple[Inbox, int], services: dict[str, ServiceRuntime],  # noqa: F811
) -> None:
    inbox, port = smtp
    await _person_thing(bus, owner)
    guest = await bus.request(THING_CREATE, {"type": "audience_member", "name": "Guest"}, owner.ctx)  # no person
    start = datetime.now(UTC) + timedelta(seconds=MEETING_LEAD + 60)
    async with running_mailer(settings, smtp_host="127.0.0.1", smtp_port=port) as mailer:
        meeting = await bus.request(MEETING_SCHEDULE, {
            "title": "Quarterly review", "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
            "participant_ids": [str(owner.person_id), str(guest.id)], "remind_before": [60]}, owner.ctx)
        due = start - timedelta(seconds=60)
        assert datetime.now(UTC) < due, "scheduling took longer than its lead"
        (mine,) = [r for r in meeting.reminders if r.recipient_id == owner.person_id]
        address = await until_async(lambda: _address_of(inbox), timeout=MEETING_LEAD + 60 + ARRIVAL)
        arrived = time.time()
        await asyncio.sleep(QUIET)
    assert arrived - due.timestamp() < ARRIVAL, f"mailed {arrived - due.timestamp():.1f} s after its time"
    (mail,) = inbox.mails_to(address)  # exactly once, and nothing for the guest (no person, no email)
    assert len(inbox.envelopes) == 1 and mailer.stats.sent == 1
    assert mail["Subject"] == "Reminder: Quarterly review" and "Quarterly review starts at" in mail.get_content()
    assert mail["Auto-Submitted"] == "auto-generated"
    events = await _email_events(services["tenancy"], owner.org_id, mine.id)
    assert [(e["metadata"]["channel"], e["metadata"]["deliveryStatus"]) for e in events] == [("email", "queued")]
    assert events[0]["target_id"] == str(owner.person_id)


async def _address_of(inbox: Inbox) -> str | None:
    return inbox.envelopes[0].rcpt_tos[0] if inbox.envelopes else None


async def test_a_reminder_for_a_person_of_another_org_is_refused_and_never_mailed(
    bus: BusClient, owner: Account, stranger: Account, settings: Settings, smtp: tuple[Inbox, int],  # noqa: F811
    services: dict[str, ServiceRuntime],
) -> None:
    inbox, port = smtp
    due = datetime.now(UTC) + timedelta(seconds=3)
    async with running_mailer(settings, smtp_host="127.0.0.1", smtp_port=port) as mailer:
        made = await bus.request(REMINDER_CREATE, {"remind_at": due.isoformat(), "message": "leak this",
                                                   "recipient_id": str(stranger.person_id)}, owner.ctx)
        events = await until_async(lambda: _email_events(services["tenancy"], owner.org_id, made.id), timeout=30)
        await asyncio.sleep(QUIET)
    assert inbox.envelopes == [] and mailer.stats.sent == 0
    (refused,) = events
    assert refused["metadata"]["deliveryStatus"] == "failed" and refused["target_id"] == str(stranger.person_id)
    assert refused["metadata"]["reason"] == "not a member of the org"


async def test_a_forged_or_malformed_notice_mails_nothing(
    bus: BusClient, owner: Account, stranger: Account, nc: Any, settings: Settings, smtp: tuple[Inbox, int],  # noqa: F811
    services: dict[str, ServiceRuntime],
) -> None:
    """Straight on the subject: the stranger's org id with the owner's person id, then bytes that are no notice;
    a good notice after them is still mailed (the consumer keeps going)."""
    inbox, port = smtp

    def notice(org_id: UUID, person_id: UUID, notice_id: UUID) -> bytes:
        return PersonEmailNotice(org_id=org_id, recipient_id=person_id, notice_id=notice_id, subject="Hi",
                                 message="hello", sent_at=datetime.now(UTC)).model_dump_json().encode()
    forged, good = UUID(int=1), UUID(int=2)
    async with running_mailer(settings, smtp_host="127.0.0.1", smtp_port=port) as mailer:
        await nc.publish(PERSON_EMAIL_SUBJECT, notice(stranger.org_id, owner.person_id, forged))
        await nc.publish(PERSON_EMAIL_SUBJECT, b'{"org_id": "not an id"}')
        await nc.publish(PERSON_EMAIL_SUBJECT, notice(owner.org_id, owner.person_id, good))
        await until(lambda: inbox.envelopes, timeout=30)
        await asyncio.sleep(QUIET)
    assert mailer.stats.sent == 1 and len(inbox.envelopes) == 1
    (failed,) = await _email_events(services["tenancy"], stranger.org_id, forged)
    assert failed["metadata"]["deliveryStatus"] == "failed"
    assert [e["metadata"]["deliveryStatus"] for e in await _email_events(services["tenancy"], owner.org_id, good)] \
        == ["queued"]


def test_a_reminder_drop_needs_its_text_and_a_token_drop_its_token() -> None:
    MailDrop(to="a@example.test", purpose="reminder", subject="s", message="m")
    with pytest.raises(ValueError):
        MailDrop(to="a@example.test", purpose="reminder", subject="s")
    with pytest.raises(ValueError):
        MailDrop(to="a@example.test", purpose="email_verification", expires_at=datetime.now(UTC))
