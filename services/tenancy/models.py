"""The `tenancy` schema as SQLAlchemy Core tables (DDL lives in migrations/), and each plan's limits.

The read models replies carry are tenancy's public face: `shared.contracts.tenancy`.
"""

from uuid import UUID, uuid5

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB

from shared.kernel.ontology import OrgPlan

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

quota_reservations = sa.Table(
    "quota_reservations", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("metric", sa.Text),
    sa.Column("amount", sa.BigInteger), sa.Column("used", sa.BigInteger),
    sa.Column("expires_at", sa.DateTime(timezone=True)), sa.Column("settled_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
"""Units held for a caller's pending work (v0005): counted while unsettled and unexpired."""

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

webhook_sources = sa.Table(
    "webhook_sources", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("name", sa.Text),
    sa.Column("scheme", sa.Text), sa.Column("secret_sealed", BYTEA), sa.Column("secret_hint", sa.Text),
    sa.Column("previous_secret_sealed", BYTEA), sa.Column("previous_valid_until", sa.DateTime(timezone=True)),
    sa.Column("signature_header", sa.Text), sa.Column("signature_encoding", sa.Text),
    sa.Column("signature_prefix", sa.Text), sa.Column("timestamp_header", sa.Text), sa.Column("id_header", sa.Text),
    sa.Column("type_path", sa.Text), sa.Column("type_header", sa.Text), sa.Column("tolerance_seconds", sa.Integer),
    sa.Column("max_per_minute", sa.Integer), sa.Column("mappings", JSONB), sa.Column("created_by", sa.Uuid),
    sa.Column("rotated_at", sa.DateTime(timezone=True)), *_timestamps(),
)
"""Inbound webhook sources (v0006): the secret envelope-sealed, bound to the org and the source."""

webhook_receipts = sa.Table(
    "webhook_receipts", metadata,
    sa.Column("source_id", sa.Uuid, primary_key=True), sa.Column("webhook_id", sa.Text, primary_key=True),
    sa.Column("org_id", sa.Uuid), sa.Column("provider_type", sa.Text), sa.Column("outcome", sa.Text),
    sa.Column("event_type", sa.Text), sa.Column("event_id", sa.Uuid), sa.Column("received_at", sa.DateTime(timezone=True)),
)
"""One row per (source, webhook id) received: the dedup record, written with the event it became."""

installed_packs = sa.Table(
    "installed_packs", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version", sa.Text), sa.Column("document", JSONB), sa.Column("owned_roles", ARRAY(sa.Text)),
    sa.Column("owned_policies", ARRAY(sa.Uuid)), sa.Column("installed_by", sa.Uuid),
    sa.Column("installed_at", sa.DateTime(timezone=True)), sa.Column("updated_at", sa.DateTime(timezone=True)),
)
"""The packs an org installed (v0007): the document as installed and what the install itself created."""

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


def role_id(org_id: UUID, name: str) -> UUID:
    """A role's id, derived from its org and name: built-in roles have no row, yet their events need a target."""
    return uuid5(org_id, f"role:{name}")
