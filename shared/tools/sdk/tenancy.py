"""`one.orgs`, `one.members`, `one.keys`, `one.roles`, `one.quotas`, `one.me()`: what tenancy offers a caller.

`org_id=None` is the key's own org; another org is a platform owner's to name (tenancy refuses
anyone else, and logs a platform owner's access in that org). Fields a method does not list go
through `**fields` (e.g. `otp=` where the org requires two-factor).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.contracts.tenancy import (
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
    ORG_UPDATE,
    POLICY_ADD,
    POLICY_REMOVE,
    QUOTA_SET,
    QUOTA_USAGE,
    RATE_LIST,
    RATE_SET,
    ROLE_CREATE,
    ROLE_LIST,
    ApiKeyInfo,
    InviteIssued,
    Joined,
    KeyIssued,
    Keys,
    MemberRemoved,
    Members,
    Membership,
    Organization,
    OrganizationCreated,
    Organizations,
    PolicyInfo,
    PolicyRemoved,
    Quota,
    Quotas,
    RateLimitRule,
    RateRules,
    RoleInfo,
    Roles,
)
from shared.tools.sdk.namespace import Namespace


class Orgs(Namespace):
    async def create(self, name: str, slug: str, **fields: Any) -> OrganizationCreated:
        """A platform owner's: a new org (with `owner={...}`, its first owner and their key)."""
        return await self._call(ORG_CREATE, name=name, slug=slug, **fields)

    async def get(self, org_id: UUID | None = None) -> Organization:
        return await self._call(ORG_GET, org_id=org_id)

    async def list(self, *, limit: int | None = None, offset: int | None = None) -> Organizations:
        return await self._call(ORG_LIST, limit=limit, offset=offset)

    async def update(self, org_id: UUID | None = None, **fields: Any) -> Organization:
        return await self._call(ORG_UPDATE, org_id=org_id, **fields)


class Memberships(Namespace):
    async def list(self, org_id: UUID | None = None) -> Members:
        return await self._call(MEMBER_LIST, org_id=org_id)

    async def invite(self, email: str, *, role: str | None = None, permissions: list[str] | None = None,
                     org_id: UUID | None = None) -> InviteIssued:
        return await self._call(MEMBER_INVITE, email=email, role=role, permissions=permissions, org_id=org_id)

    async def accept(self, token: str, **fields: Any) -> Joined:
        return await self._call(MEMBER_ACCEPT, token=token, **fields)

    async def change_role(self, person_id: UUID, role: str, *, org_id: UUID | None = None, **fields: Any) -> Membership:
        return await self._call(MEMBER_ROLE, person_id=person_id, role=role, org_id=org_id, **fields)

    async def remove(self, person_id: UUID, *, org_id: UUID | None = None, **fields: Any) -> MemberRemoved:
        return await self._call(MEMBER_REMOVE, person_id=person_id, org_id=org_id, **fields)


class ApiKeys(Namespace):
    async def create(self, name: str | None = None, *, scopes: list[str] | None = None,
                     expires_at: datetime | None = None, **fields: Any) -> KeyIssued:
        """A new key for the caller; its secret is in the answer, once."""
        return await self._call(KEY_CREATE, name=name, scopes=scopes, expires_at=expires_at, **fields)

    async def list(self, *, everyone: bool | None = None) -> Keys:
        return await self._call(KEY_LIST, everyone=everyone)

    async def revoke(self, key_id: str) -> ApiKeyInfo:
        return await self._call(KEY_REVOKE, key_id=key_id)


class RolesAndPolicies(Namespace):
    async def list(self) -> Roles:
        return await self._call(ROLE_LIST)

    async def create(self, name: str, **fields: Any) -> RoleInfo:
        return await self._call(ROLE_CREATE, name=name, **fields)

    async def add_policy(self, role: str, resource: str, action: str, **fields: Any) -> PolicyInfo:
        return await self._call(POLICY_ADD, role=role, resource=resource, action=action, **fields)

    async def remove_policy(self, policy_id: UUID, **fields: Any) -> PolicyRemoved:
        return await self._call(POLICY_REMOVE, policy_id=policy_id, **fields)


class QuotasAndLimits(Namespace):
    async def usage(self, org_id: UUID | None = None) -> Quotas:
        return await self._call(QUOTA_USAGE, org_id=org_id)

    async def set(self, metric: str, limit: int, *, org_id: UUID | None = None, **fields: Any) -> Quota:
        return await self._call(QUOTA_SET, metric=metric, limit=limit, org_id=org_id, **fields)

    async def rate_limits(self) -> RateRules:
        return await self._call(RATE_LIST)

    async def set_rate_limit(self, scope: str, max_calls: int, window_seconds: int, *, org_id: UUID | None = None,
                             **fields: Any) -> RateLimitRule:
        return await self._call(RATE_SET, scope=scope, max_calls=max_calls, window_seconds=window_seconds,
                                org_id=org_id, **fields)
