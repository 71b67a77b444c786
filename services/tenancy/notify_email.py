"""Notices for a person's email (`one.notify.person_email`, shared/contracts/notify.py): tenancy resolves the
address — only it knows people's emails — and hands the mail to its mailer's drop.

Other services (the agents service's reminders) name a person id and an org; they never see an address. A notice
is mailed only when that person is a member of that org: a person of another org is refused, logged at
warning level and recorded as a failed `notification_event` in the notice's org — never mailed; an id that is
no person at all (an agent, a graph-only thing) has no email and is skipped (its in-app notice is all).
The mail goes on the mail drop (`one.notify.email`, purpose `reminder`), so the mailer's retries, counters and
logs apply as for tenancy's own mails; the mailer publishes nothing back, so tenancy's event says `queued`
(handed to the mailer), not that SMTP took it.

Core NATS, queue group `one.tenancy`: one replica takes each notice, at most once (a tenancy down when a reminder
fires loses that email; the in-app notice and the agents' `notification_event` remain). A malformed notice is
logged and skipped.
"""

import logging
import weakref

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from services.tenancy import repository as repo
from services.tenancy.schemas import MailDrop
from services.tenancy.service import thing_type_of
from services.tenancy.state import state_of
from shared.contracts.notify import PERSON_EMAIL_SUBJECT, PersonEmailNotice
from shared.kernel import subjects
from shared.kernel.errors import OneError
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

_subscriptions: "weakref.WeakKeyDictionary[ServiceRuntime, Subscription]" = weakref.WeakKeyDictionary()


async def start(runtime: ServiceRuntime) -> None:
    """Take person-email notices, one replica each (the service's queue group)."""

    async def on_message(msg: Msg) -> None:
        await receive(runtime, msg.data)

    _subscriptions[runtime] = await runtime.broker.connection.subscribe(
        PERSON_EMAIL_SUBJECT, queue=subjects.queue_group("tenancy"), cb=on_message)


async def stop(runtime: ServiceRuntime) -> None:
    subscription = _subscriptions.pop(runtime, None)
    if subscription is not None:
        await subscription.drain()


async def receive(runtime: ServiceRuntime, data: bytes) -> str:
    """Handle one notice; returns what became of it (`queued`, `refused`, `no person`, `malformed`, `failed`)."""
    try:
        notice = PersonEmailNotice.model_validate_json(data)
    except ValidationError as error:
        fields = sorted({".".join(str(part) for part in e["loc"]) or "(message)" for e in error.errors()})
        log.warning("tenancy: skipped a person-email notice (%d bytes): bad or missing %s", len(data), ", ".join(fields))
        return "malformed"
    try:
        return await deliver(runtime.background(notice.org_id, correlation_id=notice.notice_id), notice)
    except OneError as error:  # no NATS for the drop, or the org is gone: logged, the reminder is not retried
        log.error("tenancy: %s notice %s for %s NOT mailed: %s", notice.purpose, notice.notice_id,
                  notice.recipient_id, error)
        return "failed"


async def deliver(ctx: WorkContext, notice: PersonEmailNotice) -> str:
    """Mail the notice to the recipient if they are a member of its org; record the outcome as an event."""
    metadata = {"channel": "email", "notificationType": notice.purpose, "reminderId": str(notice.notice_id),
                "subject": notice.subject}
    if notice.related_id is not None:
        metadata["relatedId"] = str(notice.related_id)
    async with ctx.transaction() as tx:
        person = await repo.get_person(tx.session, notice.recipient_id)  # Row-Level Security: members of the org only
        if person is None:
            async with repo.platform_access(tx.session):
                elsewhere = await repo.get_person(tx.session, notice.recipient_id)
            if elsewhere is None:  # an agent or a graph-only thing: no email to send, its in-app notice is all
                log.debug("tenancy: %s notice %s: %s is no person", notice.purpose, notice.notice_id,
                          notice.recipient_id)
                return "no person"
            log.warning("tenancy: %s notice %s refused: %s is not a member of org %s", notice.purpose,
                        notice.notice_id, notice.recipient_id, notice.org_id)
            await tx.emit(EventType.NOTIFICATION_EVENT, target_id=notice.recipient_id, target_type="reminder",
                          metadata={**metadata, "deliveryStatus": "failed", "reason": "not a member of the org"})
            return "refused"
        await tx.emit(EventType.NOTIFICATION_EVENT, target_id=person.id, target_type=thing_type_of(person.role),
                      metadata={**metadata, "deliveryStatus": "queued"})
        # the drop is the transaction's last step: refused by NATS, the event rolls back with it
        await state_of(ctx.runtime).send_mail(MailDrop(to=person.email, purpose="reminder", subject=notice.subject,
                                                       message=notice.message))
    return "queued"
