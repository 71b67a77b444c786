"""The `tenancy` schema as SQLAlchemy Core tables (DDL lives in migrations/) and the read models.

Read models are what replies carry; field names follow the spec's structure in
snake_case (`allowSignups` -> `allow_signups`, `apiCalls` -> `api_calls`).
"""

from datetime import datetime
from typing import Literal
from uuid import UUID, uuid5

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB

from shared.kernel.ontology import OrgPlan, OrgStatus

metadata = sa.MetaData(schema="tenancy")


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime(timezone=True)), sa.Column("updated_at", sa.DateTime(timezone=True))]


organizations = sa.Table(
    "organizations", metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text), sa.Column("slug", sa.Text), sa.Column("domain", sa.Text),
    sa.Column("status", sa.Text), sa.Column("plan", sa.Text), sa.Column("is_platform", sa.Boolean),
    sa.Column("billing_customer_id", sa.Text), sa.Column("billing_subscription_id", sa.Text),
    sa.Column("settings", JSONB), sa.Column("trial_ends_at", sa.DateTime(timezone=True)),
    *_timestamps(),
)

people = sa.Table(
    "people", metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("email", sa.Text), sa.Column("username", sa.Text), sa.Column("display_name", sa.Text),
    sa.Column("role", sa.Text), sa.Column("bio", sa.Text), sa.Column("avatar", sa.Text),
    sa.Column("current_org_id", sa.Uuid), sa.Column("email_verified_at", sa.DateTime(timezone=True)),
    *_timestamps(),
)

memberships = sa.Table(
    "memberships", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("person_id", sa.Uuid, primary_key=True),
    sa.Column("role", sa.Text), sa.Column("permissions", ARRAY(sa.Text)),
    sa.Column("invited_by", sa.Uuid), sa.Column("invited_at", sa.DateTime(timezone=True)),
    sa.Column("joined_at", sa.DateTime(timezone=True)),
)

invites = sa.Table(
    "invites", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid),
    sa.Column("email", sa.Text), sa.Column("role", sa.Text), sa.Column("permissions", ARRAY(sa.Text)),
    sa.Column("token_hash", BYTEA), sa.Column("invited_by", sa.Uuid),
    sa.Column("invited_at", sa.DateTime(timezone=True)), sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("accepted_at", sa.DateTime(timezone=True)), sa.Column("accepted_by", sa.Uuid),
    sa.Column("delivery", sa.Text),
)

roles = sa.Table(
    "roles", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("name", sa.Text, primary_key=True),
    sa.Column("description", sa.Text), sa.Column("created_at", sa.DateTime(timezone=True)),
)

policies = sa.Table(
    "policies", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("role", sa.Text),
    sa.Column("resource", sa.Text), sa.Column("action", sa.Text), sa.Column("effect", sa.Text),
    sa.Column("priority", sa.Integer),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("key_id", sa.Text, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("person_id", sa.Uuid),
    sa.Column("name", sa.Text), sa.Column("key_hash", BYTEA), sa.Column("scopes", ARRAY(sa.Text)),
    sa.Column("expires_at", sa.DateTime(timezone=True)), sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("last_used_at", sa.DateTime(timezone=True)), sa.Column("created_by", sa.Uuid),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)

quotas = sa.Table(
    "quotas", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("metric", sa.Text, primary_key=True),
    sa.Column("quota_limit", sa.BigInteger), sa.Column("used", sa.BigInteger),
    sa.Column("resets_monthly", sa.Boolean), sa.Column("period_start", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

email_verifications = sa.Table(
    "email_verifications", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("person_id", sa.Uuid),
    sa.Column("email", sa.Text), sa.Column("token_hash", BYTEA), sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)), sa.Column("used_at", sa.DateTime(timezone=True)),
)

two_factor = sa.Table(
    "two_factor", metadata,
    sa.Column("person_id", sa.Uuid, primary_key=True), sa.Column("method", sa.Text), sa.Column("secret_sealed", BYTEA),
    sa.Column("enabled_at", sa.DateTime(timezone=True)), sa.Column("last_step", sa.BigInteger),
    *_timestamps(),
)

two_factor_backup_codes = sa.Table(
    "two_factor_backup_codes", metadata,
    sa.Column("person_id", sa.Uuid, primary_key=True), sa.Column("code_hash", BYTEA, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True)), sa.Column("used_at", sa.DateTime(timezone=True)),
)

rate_limit_rules = sa.Table(
    "rate_limit_rules", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("operation", sa.Text, primary_key=True),
    sa.Column("max_calls", sa.Integer), sa.Column("window_seconds", sa.Integer),
)

PLAN_METRICS = ("users", "storage", "api_calls", "inference")
MONTHLY_METRICS = frozenset({"api_calls", "inference"})
TENANCY_COUNTED_METRICS = frozenset({"users", "api_calls", "inference"})
"""Plan metrics whose usage tenancy itself keeps: giving units back is a quota manager's decision, not a member's."""

PLAN_LIMITS: dict[OrgPlan, dict[str, int]] = {
    OrgPlan.STARTER: {"users": 5, "storage": 10, "api_calls": 10_000, "inference": 1_000},
    OrgPlan.PRO: {"users": 50, "storage": 100, "api_calls": 100_000, "inference": 10_000},
    OrgPlan.ENTERPRISE: {"users": 1_000, "storage": 1_000, "api_calls": 1_000_000, "inference": 100_000},
}
"""The spec's `limits` per plan: users, storage (GB), API calls and inference calls (per month)."""

PLAN_RATE_LIMITS: dict[OrgPlan, tuple[int, int]] = {
    OrgPlan.STARTER: (600, 60),
    OrgPlan.PRO: (6_000, 60),
    OrgPlan.ENTERPRISE: (60_000, 60),
}
"""Calls per window (seconds) for a whole org when it has set no `org` rule of its own."""


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


def role_id(org_id: UUID, name: str) -> UUID:
    """A role's id, derived from its org and name: built-in roles have no row, yet their events need a target."""
    return uuid5(org_id, f"role:{name}")


class RoleInfo(BaseModel):
    id: UUID = Field(description="Stable per org and name; the `target_id` of the role's events.")
    name: str
    builtin: bool
    description: str = ""
    policies: list[PolicyInfo]


class Quota(BaseModel):
    metric: str
    limit: int
    used: int
    resets_monthly: bool
    period_start: datetime


class RateLimitRule(BaseModel):
    scope: Literal["org", "key", "operation"]
    operation: str = "*"
    max_calls: int
    window_seconds: int
