"""Notices other services hand to a person's email: the agents service says *who* (a person id in an org) and
*what*; tenancy, which alone knows people's addresses, says *where* and mails it through its mailer.

The notice goes on `one.notify.person_email` (core NATS, queue group `one.tenancy`: one tenancy replica takes
each). Tenancy mails it only when the person is a member of the notice's org (a person of another org, or an id
that is no member, is refused and logged: never mailed), hands it to the mailer's drop (`one.notify.email`,
purpose `reminder`: the mailer's retries and counters) and logs a `notification_event` (`channel: email`,
`deliveryStatus: queued` or `failed`). Only agents may publish here and only tenancy subscribe (deploy/nats).
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.kernel import subjects

PERSON_EMAIL_SUBJECT = subjects.notify("person_email")
"""Where a notice for a person's email goes; tenancy consumes it (not the mailer: it knows no addresses)."""


class PersonEmailNotice(BaseModel):
    """One email for one person of one org; `notice_id` (the reminder's id) names it in the logged events."""

    model_config = ConfigDict(extra="ignore")  # a tenancy older than the sender skips fields it does not know

    org_id: UUID
    recipient_id: UUID
    notice_id: UUID
    purpose: Literal["reminder"] = "reminder"
    subject: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    related_id: UUID | None = None
    sent_at: datetime
