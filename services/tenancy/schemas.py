"""What only tenancy's own processes say to each other: the key-cache broadcast and the mail drop.

Neither is a request another service makes: the broadcast goes from one tenancy
replica to the others, the mail drop from tenancy to its mailer adapter.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.tenancy import Email
from shared.kernel import subjects

KEYS_INVALIDATE_SUBJECT = subjects.command("tenancy", "keys.invalidate")
"""Broadcast (no queue group): every tenancy replica drops the named keys from its cache."""

MAIL_DROP_SUBJECT = subjects.notify("email")
"""Core NATS (not the event stream: events are kept forever): one `MailDrop` per message, for the mailer."""


class MailDrop(BaseModel):
    """One message on the mail drop: what tenancy sends and the mailer reads."""

    model_config = ConfigDict(extra="ignore")  # a mailer older than tenancy skips fields it does not know

    to: Email
    purpose: Literal["email_verification", "invitation", "reminder"]
    token: str | None = Field(None, min_length=10, max_length=200, description="Verification and invitation only.")
    expires_at: datetime | None = Field(None, description="The token's expiry (verification and invitation only).")
    subject: str | None = Field(None, max_length=300, description="A reminder's subject line.")
    message: str | None = Field(None, max_length=4000, description="A reminder's text.")
    organization: str | None = Field(None, max_length=300, description="An invitation's org, as `name (slug)`.")
    role: str | None = Field(None, max_length=40, description="An invitation's role.")

    @model_validator(mode="after")
    def _has_what_its_purpose_needs(self) -> "MailDrop":
        """A token mail needs its token and expiry; a reminder its subject and text."""
        needed = ("subject", "message") if self.purpose == "reminder" else ("token", "expires_at")
        if any(getattr(self, name) is None for name in needed):
            raise ValueError(f"a {self.purpose} drop needs {' and '.join(needed)}")
        return self
