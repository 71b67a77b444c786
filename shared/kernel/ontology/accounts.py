"""The organization and people dimensions: an organization's status and plan, a person's role."""

from enum import StrEnum


class OrgStatus(StrEnum):
    """Organization account status."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TRIAL = "trial"
    CANCELLED = "cancelled"


class OrgPlan(StrEnum):
    """Organization subscription plan."""

    STARTER = "starter"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class Role(StrEnum):
    """A person's access level."""

    PLATFORM_OWNER = "platform_owner"
    ORG_OWNER = "org_owner"
    ORG_USER = "org_user"
    CUSTOMER = "customer"
