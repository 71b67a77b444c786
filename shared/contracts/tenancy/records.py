"""The read models tenancy's replies carry: organizations, people, memberships, invites, keys, roles, quotas.

Field names follow the spec's structure in snake_case (`allowSignups` ->
`allow_signups`, `apiCalls` -> `api_calls`).
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.tenancy.verify import RateLimitRule  # noqa: F401 (a read model too; defined beside the key it limits)
from shared.kernel.ontology import OrgPlan, OrgStatus


class OrgLimits(BaseModel):
    users: int = 0
    storage: int = 0
    api_calls: int = 0
    inference: int = 0


class OrgBilling(BaseModel):
    customer_id: str | None = None
    subscription_id: str | None = None


class OrgSettings(BaseModel):
    allow_signups: bool = False
    require_email_verification: bool = False
    enable_two_factor: bool = False
    allowed_domains: list[str] = Field(default_factory=list, description="Email domains invites and signups may use; empty = any.")
    on_trial_end: Literal["read_only", "continue"] = Field(
        "read_only", description="What a trial org past `trial_ends_at` may do: only read, or carry on."
    )


class Organization(BaseModel):
    id: UUID
    name: str
    slug: str
    domain: str | None
    status: OrgStatus
    plan: OrgPlan
    is_platform: bool
    limits: OrgLimits
    usage: OrgLimits
    billing: OrgBilling
    settings: OrgSettings
    trial_ends_at: datetime | None
    created_at: datetime
    updated_at: datetime
    installed_packs: list[str] = Field(default_factory=list, description="The packs installed in the org (seed 001's "
                                       "`installedPacks`; `tenancy.pack.list` has the details).")


class Person(BaseModel):
    id: UUID
    email: str
    username: str
    display_name: str
    role: str
    bio: str | None = None
    avatar: str | None = None
    current_org_id: UUID | None = None
    email_verified_at: datetime | None = None
    organizations: list[UUID] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class Membership(BaseModel):
    """The spec's `member_of` connection (person -> organization) and its metadata."""

    org_id: UUID
    person_id: UUID
    role: str
    permissions: list[str]
    invited_by: UUID | None
    invited_at: datetime | None
    joined_at: datetime


InviteDelivery = Literal["token", "email"]
"""How an invitation's token reached the invitee; `accept` trusts the token alone only when it was mailed."""


class Invite(BaseModel):
    id: UUID
    org_id: UUID
    email: str
    role: str
    permissions: list[str]
    invited_by: UUID
    invited_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    delivery: InviteDelivery = Field(description=(
        "`token`: the token went back to the inviter, who hands it over (a new email). `email`: it was mailed to "
        "the address, which already had an account, and the inviter never saw it."
    ))


class ApiKeyInfo(BaseModel):
    """A key as listed: never its secret or its hash."""

    key_id: str
    prefix: str
    org_id: UUID
    person_id: UUID
    name: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class PolicyInfo(BaseModel):
    id: UUID | None = None
    role: str
    resource: str
    action: str
    effect: Literal["allow", "deny"]
    priority: int
    builtin: bool = False


class RoleInfo(BaseModel):
    id: UUID = Field(description="Stable per org and name; the `target_id` of the role's events.")
    name: str
    builtin: bool
    description: str = ""
    policies: list[PolicyInfo]


class Quota(BaseModel):
    metric: str
    limit: int
    used: int = Field(description="Units counted: consumed, or settled by the work that reserved them.")
    reserved: int = Field(0, description="Units held by live (unsettled, unexpired) reservations and leases: they "
                          "count against `limit` beside `used`, and become `used` only as far as they are settled.")
    resets_monthly: bool
    period_start: datetime
