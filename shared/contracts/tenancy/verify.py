"""`tenancy.key.verify` and `tenancy.key.act_in_org`: the edge's one call, a presented API key in, the auth
context to stamp out.

In a module of their own so that a client which only verifies its key (the gateway's auth, every CLI
command's start) loads these few models and not the whole contract (`shared.contracts.tenancy` loads the
rest when one of its other names is first used).
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.kernel import subjects
from shared.kernel.envelope import AuthContext, Payload, register_message


class RateLimitRule(BaseModel):
    scope: Literal["org", "key", "operation"]
    operation: str = "*"
    max_calls: int
    window_seconds: int


class VerifyKey(Payload):
    key: str = Field(min_length=1, max_length=200)


class ActInOrg(VerifyKey):
    """A platform owner's key, to act in another org: refused for any other key, logged in that org."""

    org_id: UUID


class VerifiedKey(BaseModel):
    """What a valid key stands for; `scopes` is already narrowed to reads when the org may not write."""

    org_id: UUID
    actor_id: UUID
    key_id: str
    role: str
    permissions: list[str]
    scopes: list[str]
    org_status: str
    writable: bool
    expires_at: datetime | None = None
    rate_limits: list[RateLimitRule] = Field(default_factory=list, description=(
        "The rules that count this key's calls: the org's (its own `org` rule, else its plan's), its `operation` "
        "and `key` rules. The gateway enforces them without asking tenancy per request."
    ))

    def auth_context(self) -> AuthContext:
        return AuthContext(self.org_id, self.actor_id, self.role, tuple(self.permissions), tuple(self.scopes))


VERIFY_KEY = register_message("tenancy.key.verify", subjects.command("tenancy", "keys.verify"), VerifyKey, VerifiedKey,
                              requires_auth=False)
ACT_IN_ORG = register_message("tenancy.key.act_in_org", subjects.command("tenancy", "keys.act_in_org"), ActInOrg,
                              VerifiedKey, requires_auth=False)
