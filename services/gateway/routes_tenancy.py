"""Tenancy's REST routes: orgs, people, members, API keys, roles and policies, quotas, rate limits,
email verification and two-factor, each a thin mapping to one bus request.

Bodies and query strings are the contract's payload models (`shared.contracts.tenancy`), less the
ids the path carries. Where a payload names an `org_id`, the path's org goes into it and tenancy
refuses any org but the key's (a platform owner's key excepted, and logged): the URL never wins
over the key. Three routes are deliberately unauthenticated, as their messages are: signup (a
person with no key yet; tenancy refuses it unless the platform or the org allows signups), and
accepting an invitation or confirming an email, where the one-time token is the credential (an
invitation to an existing account takes that account's key as well, when one is sent).

Not over HTTP: `tenancy.key.verify` (the edge's own call, behind every key), `tenancy.rbac.check`,
`tenancy.quota.consume`/`release` and `tenancy.rate_limit.hit` (services account with them; a
caller who could release its own usage would have no quota).
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request

from services.gateway.auth import Caller, OptionalCaller
from services.gateway.problems import error_responses
from services.gateway.shapes import derived
from shared.contracts.tenancy import (
    EMAIL_VERIFICATION_REQUEST,
    EMAIL_VERIFY,
    KEY_CREATE,
    KEY_LIST,
    KEY_REVOKE,
    MEMBER_ACCEPT,
    MEMBER_INVITE,
    MEMBER_LIST,
    MEMBER_REMOVE,
    MEMBER_ROLE,
    ORG_CREATE,
    ORG_GET,
    ORG_LIST,
    ORG_RESOLVE_PUBLIC,
    ORG_UPDATE,
    PERSON_ME,
    PERSON_UPDATE,
    POLICY_ADD,
    POLICY_REMOVE,
    QUOTA_SET,
    QUOTA_USAGE,
    RATE_LIST,
    RATE_SET,
    ROLE_CREATE,
    ROLE_LIST,
    SIGNUP,
    TWO_FACTOR_CONFIRM,
    TWO_FACTOR_DISABLE,
    TWO_FACTOR_ENROLL,
    TWO_FACTOR_RESET,
    ApiKeyInfo,
    EmailVerified,
    EmailVerify,
    InviteAccept,
    InviteCreate,
    InviteIssued,
    Joined,
    KeyCreate,
    KeyIssued,
    KeyList,
    Keys,
    MemberRemoved,
    Members,
    Membership,
    Organization,
    OrganizationCreate,
    OrganizationCreated,
    OrganizationList,
    Organizations,
    OrganizationUpdate,
    Pattern,
    Person,
    PolicyAdd,
    PolicyInfo,
    PolicyRemoved,
    ProfileUpdate,
    PublicOrg,
    Quota,
    Quotas,
    QuotaSet,
    RateLimitRule,
    RateRules,
    RateRuleSet,
    RoleChange,
    RoleCreate,
    RoleInfo,
    RoleName,
    Roles,
    SecondFactor,
    Signup,
    TwoFactorCode,
    TwoFactorDisabled,
    TwoFactorEnabled,
    TwoFactorEnrollment,
    TwoFactorResetDone,
    VerificationSent,
)
from shared.runtime.client import BusClient


def _bus(request: Request) -> BusClient:
    return request.app.state.bus


Bus = Annotated[BusClient, Depends(_bus)]

OrgPatch = derived(OrganizationUpdate, "OrgPatch", drop=("org_id",))
InviteIn = derived(InviteCreate, "InviteIn", drop=("org_id",))
RoleChangeIn = derived(RoleChange, "RoleChangeIn", drop=("org_id", "person_id"))
QuotaLimit = derived(QuotaSet, "QuotaLimit", drop=("org_id", "metric"))
RateRuleIn = derived(RateRuleSet, "RateRuleIn", drop=("org_id",))
PolicyNew = derived(PolicyAdd, "PolicyNew", drop=("role",))

READ = error_responses(401, 403, 404, 422, 429, 503)
WRITE = error_responses(401, 403, 404, 409, 413, 422, 429, 503)
OPEN = error_responses(403, 404, 409, 413, 422, 429, 503)
"""An unauthenticated route's: its token or the org's settings refuse it, never a missing key."""

router = APIRouter(prefix="/v1")


# organizations

@router.post("/orgs", status_code=201, responses=WRITE, tags=["organizations"])
async def create_org(body: OrganizationCreate, caller: Caller, bus: Bus) -> OrganizationCreated:
    return await bus.request(ORG_CREATE, body, caller)


@router.get("/orgs", responses=READ, tags=["organizations"])
async def list_orgs(query: Annotated[OrganizationList, Query()], caller: Caller, bus: Bus) -> Organizations:
    return await bus.request(ORG_LIST, query, caller)


@router.get("/orgs/{org_id}", responses=READ, tags=["organizations"])
async def get_org(org_id: UUID, caller: Caller, bus: Bus) -> Organization:
    return await bus.request(ORG_GET, {"org_id": org_id}, caller)


@router.get("/public/orgs/{ref}", responses=OPEN, tags=["organizations"])
async def public_org(ref: Annotated[str, Path(min_length=1, max_length=63)], bus: Bus) -> PublicOrg:
    """Deliberately unauthenticated: what an org's public URLs (its agents' A2A URLs, by slug or id) say of it:
    its id, slug and name, nothing more; a suspended or cancelled org is not found."""
    return await bus.request(ORG_RESOLVE_PUBLIC, {"ref": ref})


@router.patch("/orgs/{org_id}", responses=WRITE, tags=["organizations"])
async def update_org(org_id: UUID, body: OrgPatch, caller: Caller, bus: Bus) -> Organization:  # type: ignore[valid-type]
    return await bus.request(ORG_UPDATE, {**_set(body), "org_id": org_id}, caller)


# people

@router.post("/signup", status_code=201, responses=OPEN, tags=["people"])
async def signup(body: Signup, bus: Bus) -> Joined:
    """Deliberately unauthenticated: a new person creates an org (when the platform allows) or joins one that
    allows signups, and gets their first API key, shown once."""
    return await bus.request(SIGNUP, body)


@router.get("/me", responses=READ, tags=["people"])
async def me(caller: Caller, bus: Bus) -> Person:
    return await bus.request(PERSON_ME, {}, caller)


@router.patch("/me", responses=WRITE, tags=["people"])
async def update_me(body: ProfileUpdate, caller: Caller, bus: Bus) -> Person:
    return await bus.request(PERSON_UPDATE, _set(body), caller)


@router.post("/me/email-verification", status_code=202, responses=WRITE, tags=["people"])
async def request_email_verification(caller: Caller, bus: Bus) -> VerificationSent:
    """Mails a verification token to the caller's address; the token never comes back in a reply."""
    return await bus.request(EMAIL_VERIFICATION_REQUEST, {}, caller)


@router.post("/email-verification/confirm", responses=OPEN, tags=["people"])
async def confirm_email(body: EmailVerify, bus: Bus) -> EmailVerified:
    """Deliberately unauthenticated: the mailed token is the credential."""
    return await bus.request(EMAIL_VERIFY, body)


@router.post("/me/two-factor", status_code=201, responses=WRITE, tags=["two-factor"])
async def enroll_two_factor(caller: Caller, bus: Bus) -> TwoFactorEnrollment:
    return await bus.request(TWO_FACTOR_ENROLL, {}, caller)


@router.post("/me/two-factor/confirm", responses=WRITE, tags=["two-factor"])
async def confirm_two_factor(body: TwoFactorCode, caller: Caller, bus: Bus) -> TwoFactorEnabled:
    return await bus.request(TWO_FACTOR_CONFIRM, body, caller)


@router.post("/me/two-factor/disable", responses=WRITE, tags=["two-factor"])
async def disable_two_factor(body: TwoFactorCode, caller: Caller, bus: Bus) -> TwoFactorDisabled:
    return await bus.request(TWO_FACTOR_DISABLE, body, caller)


# members and invitations

@router.post("/orgs/{org_id}/invites", status_code=201, responses=WRITE, tags=["members"])
async def invite_member(org_id: UUID, body: InviteIn, caller: Caller, bus: Bus) -> InviteIssued:  # type: ignore[valid-type]
    return await bus.request(MEMBER_INVITE, {**_set(body), "org_id": org_id}, caller)


@router.post("/invites/accept", status_code=201, responses=OPEN | error_responses(401), tags=["members"])
async def accept_invite(body: InviteAccept, caller: OptionalCaller, bus: Bus) -> Joined:
    """The token is the credential; an invitation to an existing account that went to the inviter is accepted
    only with that account's key (`invite_needs_sign_in` otherwise)."""
    return await bus.request(MEMBER_ACCEPT, body, caller)


@router.get("/orgs/{org_id}/members", responses=READ, tags=["members"])
async def list_members(org_id: UUID, caller: Caller, bus: Bus) -> Members:
    return await bus.request(MEMBER_LIST, {"org_id": org_id}, caller)


@router.patch("/orgs/{org_id}/members/{person_id}", responses=WRITE, tags=["members"])
async def change_role(org_id: UUID, person_id: UUID, body: RoleChangeIn, caller: Caller,  # type: ignore[valid-type]
                      bus: Bus) -> Membership:
    return await bus.request(MEMBER_ROLE, {**_set(body), "org_id": org_id, "person_id": person_id}, caller)


@router.delete("/orgs/{org_id}/members/{person_id}", responses=WRITE, tags=["members"])
async def remove_member(org_id: UUID, person_id: UUID, caller: Caller, bus: Bus,
                        body: SecondFactor | None = None) -> MemberRemoved:
    """Revokes the member's keys in the org. A body is needed only for `otp`, when the org requires two-factor."""
    return await bus.request(MEMBER_REMOVE, {**_set(body), "org_id": org_id, "person_id": person_id}, caller)


@router.delete("/orgs/{org_id}/members/{person_id}/two-factor", responses=WRITE, tags=["two-factor"])
async def reset_two_factor(org_id: UUID, person_id: UUID, caller: Caller, bus: Bus,
                           body: SecondFactor | None = None) -> TwoFactorResetDone:
    """Deletes another member's two-factor (a lost device)."""
    return await bus.request(TWO_FACTOR_RESET, {**_set(body), "org_id": org_id, "person_id": person_id}, caller)


# API keys

@router.post("/keys", status_code=201, responses=WRITE, tags=["keys"])
async def create_key(body: KeyCreate, caller: Caller, bus: Bus) -> KeyIssued:
    return await bus.request(KEY_CREATE, body, caller)


@router.get("/keys", responses=READ, tags=["keys"])
async def list_keys(query: Annotated[KeyList, Query()], caller: Caller, bus: Bus) -> Keys:
    return await bus.request(KEY_LIST, query, caller)


@router.delete("/keys/{key_id}", responses=WRITE, tags=["keys"])
async def revoke_key(key_id: str, caller: Caller, bus: Bus) -> ApiKeyInfo:
    """The key stops working at the edge within the gateway's key cache TTL."""
    return await bus.request(KEY_REVOKE, {"key_id": key_id}, caller)


# roles and policies

@router.get("/roles", responses=READ, tags=["roles"])
async def list_roles(caller: Caller, bus: Bus) -> Roles:
    return await bus.request(ROLE_LIST, {}, caller)


@router.post("/roles", status_code=201, responses=WRITE, tags=["roles"])
async def create_role(body: RoleCreate, caller: Caller, bus: Bus) -> RoleInfo:
    return await bus.request(ROLE_CREATE, body, caller)


@router.post("/roles/{role}/policies", status_code=201, responses=WRITE, tags=["roles"])
async def add_policy(role: RoleName, body: PolicyNew, caller: Caller, bus: Bus) -> PolicyInfo:  # type: ignore[valid-type]
    return await bus.request(POLICY_ADD, {**_set(body), "role": role}, caller)


@router.delete("/policies/{policy_id}", responses=WRITE, tags=["roles"])
async def remove_policy(policy_id: UUID, caller: Caller, bus: Bus, body: SecondFactor | None = None) -> PolicyRemoved:
    return await bus.request(POLICY_REMOVE, {**_set(body), "policy_id": policy_id}, caller)


# quotas and rate limits

@router.get("/orgs/{org_id}/quotas", responses=READ, tags=["quotas"])
async def quota_usage(org_id: UUID, caller: Caller, bus: Bus) -> Quotas:
    return await bus.request(QUOTA_USAGE, {"org_id": org_id}, caller)


@router.put("/orgs/{org_id}/quotas/{metric}", responses=WRITE, tags=["quotas"])
async def set_quota(org_id: UUID, metric: Pattern, body: QuotaLimit, caller: Caller, bus: Bus) -> Quota:  # type: ignore[valid-type]
    return await bus.request(QUOTA_SET, {**_set(body), "org_id": org_id, "metric": metric}, caller)


@router.get("/rate-limits", responses=READ, tags=["quotas"])
async def list_rate_limits(caller: Caller, bus: Bus) -> RateRules:
    """The rules of the key's org."""
    return await bus.request(RATE_LIST, {}, caller)


@router.put("/orgs/{org_id}/rate-limits", responses=WRITE, tags=["quotas"])
async def set_rate_limit(org_id: UUID, body: RateRuleIn, caller: Caller, bus: Bus) -> RateLimitRule:  # type: ignore[valid-type]
    """Sets the rule for its `scope` and `operation`."""
    return await bus.request(RATE_SET, {**_set(body), "org_id": org_id}, caller)


def _set(model: Any) -> dict[str, Any]:
    """Only what the caller gave (a PATCH changes only those); no body is an empty one."""
    return {} if model is None else model.model_dump(mode="json", exclude_unset=True)
