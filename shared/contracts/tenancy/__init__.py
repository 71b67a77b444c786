"""Tenancy's public face: its messages, the read models its replies carry, and its errors.

Import every name from here (`from shared.contracts.tenancy import VERIFY_KEY`); importing the package
registers tenancy's error codes, so a caller gets the typed error back from a reply.

Only the errors and the key verification (`verify.py`) load with the package: the other names are loaded
from `messages.py` and `records.py` when one of them is first used (PEP 562), which registers those
messages then. A client that only verifies its key (every CLI command's start) skips building some sixty
models it never uses; anything that names one of them gets it as before.
"""

import importlib
from typing import Any

from shared.contracts.tenancy.errors import (
    DomainNotAllowed,
    EmailAlreadyVerified,
    EmailNotVerified,
    InviteInvalid,
    InviteNeedsSignIn,
    LastOwner,
    OrganizationNotFound,
    OrganizationNotWritable,
    PersonNotFound,
    QuotaNotFound,
    SignupClosed,
    TenancyError,
    TwoFactorCodeInvalid,
    TwoFactorRequired,
    TwoFactorState,
    VerificationInvalid,
)
from shared.contracts.tenancy.verify import (
    ACT_IN_ORG,
    VERIFY_KEY,
    ActInOrg,
    RateLimitRule,
    VerifiedKey,
    VerifyKey,
)

_LOADED_ON_USE = {
    "messages": (
        "EMAIL_VERIFICATION_REQUEST", "EMAIL_VERIFY", "KEY_CREATE", "KEY_LIST", "KEY_REVOKE", "MEMBER_ACCEPT",
        "MEMBER_INVITE", "MEMBER_LIST", "MEMBER_REMOVE", "MEMBER_ROLE", "ORG_CREATE", "ORG_GET", "ORG_LIST",
        "ORG_RESOLVE_PUBLIC", "PublicOrg", "PublicOrgRef",
        "ORG_UPDATE", "PERSON_ME", "PERSON_UPDATE", "POLICY_ADD", "POLICY_REMOVE", "QUOTA_CONSUME", "QUOTA_RELEASE",
        "QUOTA_RESERVE", "QUOTA_SETTLE", "QUOTA_SET", "QUOTA_USAGE", "RATE_HIT", "RATE_LIST", "RATE_SET", "RBAC_CHECK", "ROLE_CREATE", "ROLE_LIST",
        "SIGNUP", "TWO_FACTOR_CONFIRM", "TWO_FACTOR_DISABLE", "TWO_FACTOR_ENROLL", "TWO_FACTOR_RESET", "Check",
        "CheckResult", "Domain", "Email", "EmailVerified", "EmailVerify", "InviteAccept", "InviteCreate",
        "InviteIssued", "Joined", "KeyCreate", "KeyIssued", "KeyList", "KeyRevoke", "Keys", "Member",
        "MemberRemove", "MemberRemoved", "Members", "Name", "NewOrg", "OneTimeCode", "OrganizationCreate",
        "OrganizationCreated", "OrganizationList", "Organizations", "OrganizationUpdate", "OrgTarget", "Pattern",
        "PersonIn", "PolicyAdd", "PolicyIn", "PolicyRemove", "PolicyRemoved", "ProfileUpdate", "QuotaChange",
        "QuotaReservation", "QuotaReserve", "Quotas", "QuotaSet", "QuotaSettle", "RateAllowed", "RateHit", "RateRules", "RateRuleSet", "RoleChange", "RoleCreate",
        "RoleName", "Roles", "Scope", "SecondFactor", "SettingsPatch", "Signup", "Slug", "TwoFactorCode",
        "TwoFactorDisabled", "TwoFactorEnabled", "TwoFactorEnrollment", "TwoFactorReset", "TwoFactorResetDone",
        "Username", "VerificationSent",
    ),
    "identity": ("IDENTITY_SNAPSHOT", "IdentityQuery", "IdentitySnapshot", "MemberIdentity", "OrgIdentity"),
    "records": (
        "ApiKeyInfo", "Invite", "InviteDelivery", "Membership", "Organization", "OrgBilling", "OrgLimits",
        "OrgSettings", "Person", "PolicyInfo", "Quota", "RoleInfo",
    ),
}
_MODULE_OF = {name: module for module, names in _LOADED_ON_USE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__all__ = [
    "DomainNotAllowed",
    "EmailAlreadyVerified",
    "EmailNotVerified",
    "InviteInvalid",
    "InviteNeedsSignIn",
    "LastOwner",
    "OrganizationNotFound",
    "OrganizationNotWritable",
    "PersonNotFound",
    "QuotaNotFound",
    "SignupClosed",
    "TenancyError",
    "TwoFactorCodeInvalid",
    "TwoFactorRequired",
    "TwoFactorState",
    "VerificationInvalid",
    "ACT_IN_ORG",
    "VERIFY_KEY",
    "ActInOrg",
    "RateLimitRule",
    "VerifiedKey",
    "VerifyKey",
    *_MODULE_OF,
]
