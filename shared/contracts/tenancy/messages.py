"""The messages tenancy answers: payload and result models, registered once.

Payloads that name an `org_id` let a platform owner act on another org (every
such access is logged); anyone else may only name their own. The org and actor
always come from the envelope, never from the payload. `tenancy.key.verify` is
the edge's one call: a presented API key in, the auth context to stamp out.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from shared.contracts.tenancy.records import (
    ApiKeyInfo,
    Invite,
    InviteDelivery,
    Membership,
    Organization,
    OrgBilling,
    Person,
    PolicyInfo,
    Quota,
    RateLimitRule,
    RoleInfo,
)
from shared.contracts.tenancy.verify import ACT_IN_ORG, VERIFY_KEY, ActInOrg, VerifiedKey, VerifyKey  # noqa: F401 (re-exported)
from shared.kernel import subjects
from shared.kernel.envelope import Empty, Payload, register_message
from shared.kernel.ontology import OrgPlan, OrgStatus


def _normalise_email(value: str) -> str:
    value = value.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in value) or value.count("@") != 1:
        raise ValueError("not an email address")
    return value


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_normalise_email)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{2,40}$")]
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Pattern = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.*?-]{1,60}$")]
Scope = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.*?-]{1,60}(:[a-z0-9_.*?-]{1,60})?$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Domain = Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$", to_lower=True)]
OneTimeCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(?:[0-9]{6}|[A-Za-z0-9]{5}-?[A-Za-z0-9]{5})$")]
"""A current TOTP code (6 digits) or an unused backup code (`xxxxx-xxxxx`)."""


class SecondFactor(Payload):
    otp: OneTimeCode | None = Field(
        None, description="A current TOTP or backup code: needed when the actor's org enables two-factor."
    )


class OrgTarget(Payload):
    org_id: UUID | None = Field(None, description="Another org: platform owners only.")


class SettingsPatch(Payload):
    allow_signups: bool | None = None
    require_email_verification: bool | None = None
    enable_two_factor: bool | None = None
    allowed_domains: list[Domain] | None = None
    on_trial_end: Literal["read_only", "continue"] | None = None


class PersonIn(Payload):
    email: Email
    username: Username | None = None
    display_name: Name


class OrganizationCreate(Payload):
    name: Name
    slug: Slug
    domain: Domain | None = None
    plan: OrgPlan = OrgPlan.STARTER
    status: OrgStatus = OrgStatus.ACTIVE
    trial_ends_at: datetime | None = None
    settings: SettingsPatch = Field(default_factory=SettingsPatch)
    billing: OrgBilling = Field(default_factory=OrgBilling)
    owner: PersonIn | None = Field(None, description="Created (or found by email) and made the org's owner, with a key.")


class OrganizationCreated(BaseModel):
    organization: Organization
    owner: Person | None = None
    owner_key: str | None = Field(None, description="The owner's first API key; shown once.")


class OrganizationUpdate(OrgTarget, SecondFactor):
    name: Name | None = None
    domain: Domain | None = None
    settings: SettingsPatch | None = None
    plan: OrgPlan | None = Field(None, description="Platform owners only; resets the plan's limits.")
    status: OrgStatus | None = Field(None, description="Platform owners only.")
    billing: OrgBilling | None = Field(None, description="Platform owners only.")
    trial_ends_at: datetime | None = Field(None, description="Platform owners only.")


class PublicOrgRef(Payload):
    ref: Annotated[str, StringConstraints(min_length=1, max_length=63)] = Field(
        description="The org's slug (or its id) as a public URL names it.")


class PublicOrg(BaseModel):
    """What anyone may know of an org a public URL names (an agent's A2A URL): nothing more."""

    id: UUID
    slug: str
    name: str


class OrganizationList(Payload):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class Organizations(BaseModel):
    organizations: list[Organization]


class NewOrg(Payload):
    name: Name
    slug: Slug


class Signup(Payload):
    email: Email
    username: Username | None = None
    display_name: Name
    organization: NewOrg | None = Field(None, description="Create this org and own it (when the platform allows).")
    join: Slug | None = Field(None, description="Join this existing org (when it allows signups).")


class Joined(BaseModel):
    person: Person
    organization: Organization
    membership: Membership
    api_key: str = Field(description="The new member's first API key for this org; shown once.")


class ProfileUpdate(Payload):
    username: Username | None = None
    display_name: Name | None = None
    bio: str | None = Field(None, max_length=2000)
    avatar: str | None = Field(None, max_length=2000)
    current_org_id: UUID | None = Field(None, description="Switch the current org (must be a member).")


class InviteCreate(OrgTarget):
    email: Email
    role: RoleName = "org_user"
    permissions: list[Scope] = Field(default_factory=list, description="Extra `resource:action` grants for this member.")


class InviteIssued(BaseModel):
    invite: Invite
    delivery: InviteDelivery = Field(description=(
        "`token`: a new email; the token is below, give it to the invitee. `email`: the address already has an "
        "account; the token was mailed to it and is not shown to the inviter."
    ))
    token: str | None = Field(None, description="Shown once, only when `delivery` is `token`.")


class InviteAccept(Payload):
    token: str = Field(min_length=10, max_length=200)
    username: Username | None = None
    display_name: Name | None = None


class Member(Membership):
    email: str
    username: str
    display_name: str


class Members(BaseModel):
    members: list[Member]
    pending_invites: list[Invite]


class RoleChange(OrgTarget, SecondFactor):
    person_id: UUID
    role: RoleName
    permissions: list[Scope] | None = None


class MemberRemove(OrgTarget, SecondFactor):
    person_id: UUID


class MemberRemoved(BaseModel):
    org_id: UUID
    person_id: UUID
    revoked_keys: list[str]


class KeyCreate(SecondFactor):
    name: Name = "default"
    scopes: list[Scope] = Field(default_factory=list, description="`resource:action` patterns; empty = whatever the role allows.")
    expires_at: datetime | None = None


class KeyIssued(BaseModel):
    key: str = Field(description="The full key; shown once, only its keyed hash is stored.")
    info: ApiKeyInfo


class KeyList(Payload):
    everyone: bool = Field(False, description="All keys of the org (needs keys:manage), not just the caller's.")


class Keys(BaseModel):
    keys: list[ApiKeyInfo]


class KeyRevoke(Payload):
    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")


class PolicyIn(Payload):
    resource: Pattern
    action: Pattern
    effect: Literal["allow", "deny"] = "allow"
    priority: int = Field(0, ge=-1000, le=1000)


class RoleCreate(SecondFactor):
    name: RoleName
    description: str = Field("", max_length=500)
    policies: list[PolicyIn] = Field(default_factory=list)


class PolicyAdd(PolicyIn, SecondFactor):
    role: RoleName


class PolicyRemove(SecondFactor):
    policy_id: UUID


class PolicyRemoved(BaseModel):
    policy_id: UUID


class Roles(BaseModel):
    roles: list[RoleInfo]


class Check(Payload):
    resource: Pattern
    action: Pattern
    person_id: UUID | None = Field(None, description="Check another member instead of the caller (needs members:read).")


class CheckResult(BaseModel):
    allowed: bool
    reason: str
    role: str


class QuotaChange(Payload):
    metric: Pattern
    amount: int = Field(1, ge=1)


class QuotaReserve(Payload):
    metric: Pattern
    amount: int = Field(1, ge=1)
    ttl_seconds: float = Field(30.0, gt=0, le=3600, description="Held this long unless settled first.")
    at_least: int | None = Field(
        None, ge=1, description="A lease: hold as many of `amount` as fit, down to this many (the reply says how many).",
    )


class QuotaReservation(BaseModel):
    """Units held for the caller's pending work: settle them (`tenancy.quota.settle`) once it committed."""

    id: UUID | None = Field(description="None when the org has no such quota (unlimited): nothing to settle.")
    metric: str
    amount: int
    expires_at: datetime | None = None
    quota: Quota | None = None


class QuotaSettle(Payload):
    reservation_id: UUID
    used: int = Field(ge=0, description="Units the work really used (at most the amount reserved); 0 cancels.")


class QuotaSet(OrgTarget):
    metric: Pattern
    limit: int = Field(ge=0)
    resets_monthly: bool = False


class Quotas(BaseModel):
    quotas: list[Quota]


class RateHit(Payload):
    operation: Pattern
    key_id: str | None = Field(None, pattern=r"^[0-9a-f]{12}$")


class RateAllowed(BaseModel):
    remaining: int
    reset_after: float


class RateRuleSet(OrgTarget):
    scope: Literal["org", "key", "operation"]
    operation: Pattern = "*"
    max_calls: int = Field(ge=1)
    window_seconds: int = Field(ge=1, le=86400)


class RateRules(BaseModel):
    rules: list[RateLimitRule]


class VerificationSent(BaseModel):
    email: str
    expires_at: datetime = Field(description="The token itself went to the mail drop, never into a reply or an event.")


class EmailVerify(Payload):
    token: str = Field(min_length=10, max_length=200)


class EmailVerified(BaseModel):
    person_id: UUID
    email: str
    email_verified_at: datetime


class TwoFactorEnrollment(BaseModel):
    secret: str = Field(description="Base32 TOTP secret for an authenticator app; shown once.")
    otpauth_uri: str = Field(description="The same secret as an `otpauth://` URI (for a QR code); shown once.")


class TwoFactorCode(Payload):
    code: OneTimeCode


class TwoFactorEnabled(BaseModel):
    enabled_at: datetime
    backup_codes: list[str] = Field(description="Single-use recovery codes; shown once, only their keyed hashes are stored.")


class TwoFactorDisabled(BaseModel):
    person_id: UUID
    used_backup_code: bool


class TwoFactorReset(OrgTarget, SecondFactor):
    person_id: UUID = Field(description="Whose two-factor to delete: a member of the org (another person, never the caller).")


class TwoFactorResetDone(BaseModel):
    org_id: UUID
    person_id: UUID
    was_enabled: bool = Field(description="False when only an unconfirmed enrolment was deleted.")


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel], **options: Any) -> Any:
    return register_message(type_, subjects.command("tenancy", verb), payload, result, **options)


ORG_CREATE = _message("tenancy.organization.create", "organizations.create", OrganizationCreate, OrganizationCreated)
ORG_GET = _message(
    "tenancy.organization.get", "organizations.get", OrgTarget, Organization, permission="organization:read"
)
ORG_UPDATE = _message("tenancy.organization.update", "organizations.update", OrganizationUpdate, Organization)
ORG_LIST = _message("tenancy.organization.list", "organizations.list", OrganizationList, Organizations)
ORG_RESOLVE_PUBLIC = _message("tenancy.organization.resolve_public", "organizations.resolve_public", PublicOrgRef,
                              PublicOrg, requires_auth=False)
SIGNUP = _message("tenancy.signup", "signup", Signup, Joined, requires_auth=False)
PERSON_ME = _message("tenancy.person.me", "people.me", Empty, Person)
PERSON_UPDATE = _message("tenancy.person.update", "people.update", ProfileUpdate, Person)
MEMBER_INVITE = _message(
    "tenancy.member.invite", "members.invite", InviteCreate, InviteIssued, permission="members:invite"
)
MEMBER_ACCEPT = _message("tenancy.member.accept", "members.accept", InviteAccept, Joined, requires_auth=False)
MEMBER_LIST = _message("tenancy.member.list", "members.list", OrgTarget, Members, permission="members:list")
MEMBER_ROLE = _message(
    "tenancy.member.change_role", "members.change_role", RoleChange, Membership, permission="members:update"
)
MEMBER_REMOVE = _message("tenancy.member.remove", "members.remove", MemberRemove, MemberRemoved)
KEY_CREATE = _message("tenancy.key.create", "keys.create", KeyCreate, KeyIssued, permission="keys:create")
KEY_LIST = _message("tenancy.key.list", "keys.list", KeyList, Keys, permission="keys:list")
KEY_REVOKE = _message("tenancy.key.revoke", "keys.revoke", KeyRevoke, ApiKeyInfo, permission="keys:revoke")
ROLE_LIST = _message("tenancy.role.list", "roles.list", Empty, Roles, permission="roles:list")
ROLE_CREATE = _message("tenancy.role.create", "roles.create", RoleCreate, RoleInfo, permission="roles:create")
POLICY_ADD = _message("tenancy.policy.add", "policies.add", PolicyAdd, PolicyInfo, permission="policies:create")
POLICY_REMOVE = _message(
    "tenancy.policy.remove", "policies.remove", PolicyRemove, PolicyRemoved, permission="policies:delete"
)
RBAC_CHECK = _message("tenancy.rbac.check", "rbac.check", Check, CheckResult)
QUOTA_USAGE = _message("tenancy.quota.usage", "quotas.usage", OrgTarget, Quotas, permission="quotas:read")
QUOTA_CONSUME = _message("tenancy.quota.consume", "quotas.consume", QuotaChange, Quota, permission="quotas:consume")
QUOTA_RELEASE = _message("tenancy.quota.release", "quotas.release", QuotaChange, Quota)
QUOTA_RESERVE = _message(
    "tenancy.quota.reserve", "quotas.reserve", QuotaReserve, QuotaReservation, permission="quotas:consume"
)
QUOTA_SETTLE = _message("tenancy.quota.settle", "quotas.settle", QuotaSettle, Quota, permission="quotas:consume")
QUOTA_SET = _message("tenancy.quota.set_limit", "quotas.set_limit", QuotaSet, Quota, permission="quotas:update")
RATE_HIT = _message("tenancy.rate_limit.hit", "rate_limits.hit", RateHit, RateAllowed)
RATE_SET = _message(
    "tenancy.rate_limit.set", "rate_limits.set", RateRuleSet, RateLimitRule, permission="rate_limits:update"
)
RATE_LIST = _message("tenancy.rate_limit.list", "rate_limits.list", Empty, RateRules, permission="rate_limits:read")
EMAIL_VERIFICATION_REQUEST = _message(
    "tenancy.email.verification.request", "email.verification.request", Empty, VerificationSent
)
EMAIL_VERIFY = _message("tenancy.email.verify", "email.verify", EmailVerify, EmailVerified, requires_auth=False)
TWO_FACTOR_ENROLL = _message("tenancy.two_factor.enroll", "two_factor.enroll", Empty, TwoFactorEnrollment)
TWO_FACTOR_CONFIRM = _message("tenancy.two_factor.confirm", "two_factor.confirm", TwoFactorCode, TwoFactorEnabled)
TWO_FACTOR_DISABLE = _message("tenancy.two_factor.disable", "two_factor.disable", TwoFactorCode, TwoFactorDisabled)
TWO_FACTOR_RESET = _message(
    "tenancy.two_factor.reset", "two_factor.reset", TwoFactorReset, TwoFactorResetDone, permission="two_factor:reset"
)
