"""API keys: issue, list, revoke, and verify a presented key into an auth context, with a short cache.

Verification is the hot path of every request at the edge, so a verified key is
kept in memory for `key_cache_ttl` seconds (the presented secret is still checked
on every call, against a keyed digest kept with the entry). When an entry expires under
load, the verifies of that key share one database load instead of each opening a
transaction. Revocation reaches every replica at once through an invalidation
broadcast; the TTL bounds the delay when a broadcast is lost, and a tombstone
stops a replica re-caching a key it was just told about from a transaction that
has not committed yet.
"""

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from services.tenancy import repository as repo, repository_access as access_repo
from services.tenancy.models import PLAN_RATE_LIMITS
from services.tenancy.service import (
    CROSS_ORG_ACCESS,
    Actor,
    effective_policies,
    now,
    record,
    require_writable,
    resolve_actor,
    writability,
)
from services.tenancy.service_two_factor import require_second_factor
from services.tenancy.settings import TenancySettings
from services.tenancy.state import TenancyState
from shared.contracts.tenancy import (
    ApiKeyInfo,
    KeyCreate,
    OrganizationNotFound,
    OrgSettings,
    RateLimitRule,
    VerifiedKey,
)
from shared.kernel.api_keys import KEY_PREFIX, new_api_key, parse_api_key
from shared.kernel.envelope import Encoded
from shared.kernel.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from shared.kernel.ontology import EventType, OrgPlan, Role
from shared.kernel.rbac import read_only_scopes, unverified_scopes
from shared.kernel.sealing import secret_file
from shared.runtime.context import WorkContext
from shared.runtime.db import Database


def load_pepper(settings: TenancySettings) -> bytes:
    """The pepper from settings, else from `<data_dir>/tenancy/pepper`, generated (0600) on first use."""
    if settings.api_key_pepper is not None:
        return settings.api_key_pepper.get_secret_value().encode()
    return secret_file(Path(settings.data_dir) / "tenancy" / "pepper", "ONE_API_KEY_PEPPER")


@dataclass
class _Entry:
    fingerprint: bytes  # `Credentials.fingerprint` of the key, taken once its HMAC matched the stored hash
    result: Encoded[VerifiedKey]  # serialised once: every verify the entry answers replies with the same JSON
    key_expires_at: datetime | None
    cached_until: float


@dataclass
class Credentials:
    """The pepper and the verified-key cache of one tenancy process (`TenancyState.invalidate_keys` tells the others)."""

    pepper: bytes
    ttl: float
    _cache: dict[str, _Entry] = field(default_factory=dict)
    _tombstones: dict[tuple[str, ...], float] = field(default_factory=dict)
    _loading: dict[str, "asyncio.Future[_Loaded]"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # HMAC's keyed state, computed once; each hash copies it (what `keyed_hash` does, minus the key set-up).
        self._keyed = hmac.new(self.pepper, digestmod=hashlib.sha256)
        self._fingerprints = hashlib.blake2b(key=secrets.token_bytes(32), digest_size=32)

    def hash(self, value: str) -> bytes:
        keyed = self._keyed.copy()
        keyed.update(value.encode())
        return keyed.digest()

    def matches(self, value: str, stored: bytes) -> bool:
        """Constant-time, as `shared.kernel.api_keys.hash_matches`."""
        return hmac.compare_digest(self.hash(value), stored)

    def fingerprint(self, value: str) -> bytes:
        """A keyed BLAKE2b of `value` under a key that never leaves this process.

        A cache hit checks the presented secret against this instead of the stored
        HMAC-SHA256: the same constant-time check of a keyed digest, at a third
        of the cost, on the path every request at the edge takes.
        """
        keyed = self._fingerprints.copy()
        keyed.update(value.encode())
        return keyed.digest()

    def fingerprint_matches(self, value: str, fingerprint: bytes) -> bool:
        return hmac.compare_digest(self.fingerprint(value), fingerprint)

    def apply_invalidation(self, message: dict[str, Any]) -> None:
        """Drop the entries a key invalidation names (`key_ids`, or an `org_id` with an optional `person_id`)."""
        until = time.monotonic() + max(self.ttl, 1.0)
        marks = [("key", k) for k in message.get("key_ids") or []]
        if message.get("org_id"):
            marks.append(("org", message["org_id"], message.get("person_id") or "*"))
        for mark in marks:
            self._tombstones[mark] = until
        self._loading.clear()  # a load already under way may predate the change: later verifies start their own
        for key_id, entry in list(self._cache.items()):
            if self._tombstoned(key_id, entry.result.model, time.monotonic()):
                self._cache.pop(key_id, None)

    def _tombstoned(self, key_id: str, result: VerifiedKey, clock: float) -> bool:
        org = str(result.org_id)
        marks = (("key", key_id), ("org", org, "*"), ("org", org, str(result.actor_id)))
        return any(self._tombstones.get(mark, 0.0) > clock for mark in marks)

    def cached(self, key_id: str) -> _Entry | None:
        entry = self._cache.get(key_id)
        if entry is None:
            return None
        if entry.cached_until <= time.monotonic():
            self._cache.pop(key_id, None)
            return None
        return entry

    async def load_once(self, key_id: str, load: Callable[[], Awaitable["_Loaded"]]) -> "_Loaded":
        """The key's row, loaded once for every verify of `key_id` that misses the cache meanwhile.

        Without this, an expired entry under load made every in-flight verify of
        the key open its own transaction (and the pool its overflow connections).
        The load runs in a task of its own, so a caller that gives up does not
        cancel it for the others.
        """
        pending = self._loading.get(key_id)
        if pending is None:
            pending = asyncio.ensure_future(load())
            self._loading[key_id] = pending
            pending.add_done_callback(lambda done: self._forget_load(key_id, done))
        return await asyncio.shield(pending)

    def _forget_load(self, key_id: str, done: "asyncio.Future[_Loaded]") -> None:
        if self._loading.get(key_id) is done:
            del self._loading[key_id]
        if not done.cancelled():
            done.exception()  # retrieved here: every waiter may have given up already

    def remember(self, key_id: str, entry: _Entry) -> None:
        clock = time.monotonic()
        if self.ttl <= 0 or self._tombstoned(key_id, entry.result.model, clock):
            return
        if len(self._tombstones) > 10_000:
            self._tombstones = {m: t for m, t in self._tombstones.items() if t > clock}
        entry.cached_until = clock + self.ttl
        self._cache[key_id] = entry


def key_info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id, prefix=f"{KEY_PREFIX}{row.key_id}", org_id=row.org_id, person_id=row.person_id, name=row.name,
        scopes=list(row.scopes), expires_at=row.expires_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at,
        created_at=row.created_at,
    )


async def issue_key(
    ctx: WorkContext, creds: Credentials, org_id: UUID, person_id: UUID, *,
    name: str = "default", scopes: list[str] | None = None, expires_at: datetime | None = None,
) -> tuple[str, ApiKeyInfo]:
    """A new key for a member of `org_id` (the transaction works in that org); the full key is returned once."""
    presented = new_api_key()
    await access_repo.insert_key(ctx.session, {
        "key_id": presented.key_id, "org_id": org_id, "person_id": person_id, "name": name,
        "key_hash": creds.hash(presented.full), "scopes": scopes or [], "expires_at": expires_at,
        "created_by": ctx.envelope.actor_id or person_id,
    })
    await record(
        ctx, EventType.ENTITY_CREATED, org_id=org_id, target_id=person_id, target_type="api_key",
        metadata={"keyId": presented.key_id, "name": name, "scopes": scopes or [], "expiresAt": str(expires_at) if expires_at else None},
        actor_id=ctx.envelope.actor_id or person_id,
    )
    row = await access_repo.get_key(ctx.session, org_id, presented.key_id)
    return presented.full, key_info(row)


async def create_key(ctx: WorkContext, creds: Credentials, payload: KeyCreate) -> tuple[str, ApiKeyInfo]:
    actor = await resolve_actor(ctx)
    require_writable(await repo.get_org(ctx.session, actor.org_id))
    actor.require("keys", "create")
    if payload.expires_at is not None and payload.expires_at <= now():
        raise InvalidRequest("a key cannot expire in the past")
    await require_second_factor(ctx, creds, actor.org_id, actor.person_id, payload.otp)
    return await issue_key(ctx, creds, actor.org_id, actor.person_id, name=payload.name, scopes=payload.scopes,
                           expires_at=payload.expires_at)


async def list_keys(ctx: WorkContext, everyone: bool) -> list[ApiKeyInfo]:
    actor = await resolve_actor(ctx)
    actor.require("keys", "list")
    if everyone:
        actor.require("keys", "manage")
    rows = await access_repo.list_keys(ctx.session, actor.org_id, None if everyone else actor.person_id)
    return [key_info(r) for r in rows]


async def revoke_key(ctx: WorkContext, replica: TenancyState, key_id: str) -> ApiKeyInfo:
    """One's own key (keys:revoke), or anyone's in the org (keys:manage). Allowed in a read-only org too."""
    actor: Actor = await resolve_actor(ctx)
    actor.require("keys", "revoke")
    row = await access_repo.get_key(ctx.session, actor.org_id, key_id)
    if row is None:
        raise NotFound(f"no key {key_id} in this organization")
    if row.person_id != actor.person_id:
        actor.require("keys", "manage")
    await access_repo.revoke_keys(ctx.session, actor.org_id, key_id=key_id)
    replica.invalidate_keys(key_ids=[key_id])
    await record(ctx, EventType.ENTITY_UPDATED, org_id=actor.org_id, target_id=row.person_id, target_type="api_key",
                 metadata={"keyId": key_id, "action": "revoked"})
    return key_info(await access_repo.get_key(ctx.session, actor.org_id, key_id))


_INVALID = "invalid API key"


@dataclass
class _Loaded:
    key_hash: bytes
    expires_at: datetime | None
    result: VerifiedKey | None
    refusal: str = ""


async def verify_key(creds: Credentials, db: Database, presented_text: str) -> Encoded[VerifiedKey]:
    """A presented key to its auth context (with its JSON); every failure is `unauthenticated`.

    The secret is checked before any reason (revoked, expired, ...) is told, so
    a caller without it learns only that the key is invalid. The scopes are
    narrowed to reads in an org that may not write, and to `email:verify` for a
    member whose email is unverified in an org that requires verification.
    """
    presented = parse_api_key(presented_text)
    entry = creds.cached(presented.key_id)
    if entry is None:
        loaded = await creds.load_once(presented.key_id, lambda: _load(db, presented.key_id))
        if not creds.matches(presented.full, loaded.key_hash):
            raise Unauthenticated(_INVALID)
        if loaded.result is None:
            raise Unauthenticated(loaded.refusal)
        entry = _Entry(creds.fingerprint(presented.full), Encoded.of(loaded.result), loaded.expires_at, 0.0)
        creds.remember(presented.key_id, entry)
    elif not creds.fingerprint_matches(presented.full, entry.fingerprint):
        raise Unauthenticated(_INVALID)
    if entry.key_expires_at is not None and entry.key_expires_at <= now():
        raise Unauthenticated("this API key has expired")
    return entry.result


async def effective_rate_rules(session: Any, org: Any) -> list[RateLimitRule]:
    """The org's rules with its `org` window first: its own rule, else its plan's (what `hit` counts, and
    what `tenancy.key.verify` hands the gateway to count at the edge)."""
    rules = [RateLimitRule(scope=r.scope, operation=r.operation, max_calls=r.max_calls, window_seconds=r.window_seconds)
             for r in await access_repo.rate_rules(session, org.id)]
    if not any(r.scope == "org" for r in rules):
        max_calls, window = PLAN_RATE_LIMITS[OrgPlan(org.plan)]
        rules.append(RateLimitRule(scope="org", max_calls=max_calls, window_seconds=window))
    return sorted(rules, key=lambda r: r.scope != "org")


async def _load(db: Database, key_id: str) -> _Loaded:
    async with db.transaction() as session:
        async with repo.platform_access(session):
            key = await access_repo.key_for_verification(session, key_id)
        if key is None:
            raise Unauthenticated(_INVALID)
        await repo.switch_org(session, key.org_id)
        if key.revoked_at is not None:
            return _Loaded(key.key_hash, key.expires_at, None, "this API key has been revoked")
        org = await repo.get_org(session, key.org_id)
        actor = await repo.actor_in_org(session, key.org_id, key.person_id)
        if actor is None or org is None:
            return _Loaded(key.key_hash, key.expires_at, None, "the key's owner is no longer a member of its organization")
        role = Role.PLATFORM_OWNER.value if actor.person_role == Role.PLATFORM_OWNER else actor.role
        policies = await effective_policies(session, key.org_id, role, list(actor.permissions))
        writable, _ = writability(org)
        scopes = list(key.scopes) if writable else list(read_only_scopes(key.scopes))
        if (actor.email_verified_at is None and role != Role.PLATFORM_OWNER
                and OrgSettings.model_validate(org.settings).require_email_verification):
            scopes = list(unverified_scopes(key.scopes))  # only asking for verification, until the email is verified
        result = VerifiedKey(
            org_id=key.org_id, actor_id=key.person_id, key_id=key_id, role=role,
            permissions=[p.encode() for p in policies],
            scopes=scopes,
            org_status=org.status, writable=writable, expires_at=key.expires_at,
            rate_limits=await effective_rate_rules(session, org),
        )
        await access_repo.touch_key(session, key.org_id, key_id)
        return _Loaded(key.key_hash, key.expires_at, result)


async def act_in_org(ctx: WorkContext, creds: Credentials, key: str, org_id: UUID) -> VerifiedKey:
    """A platform owner's key as an auth context in another org, logged in that org as cross-org access.

    How the CLI's and the SDK's `--org` act elsewhere: the key is verified as every key is, and only
    a platform owner's passes; the event names the key and the owner's own org, so the target org
    sees who came in. Any other key is refused, whatever org it names.
    """
    own = (await verify_key(creds, ctx.runtime.db, key)).model
    if own is None or own.role != Role.PLATFORM_OWNER:
        raise Forbidden("only a platform owner's key acts in another organization", {"org_id": str(org_id)})
    if org_id == own.org_id:
        return own
    await repo.switch_org(ctx.session, org_id)
    org = await repo.get_org(ctx.session, org_id)
    if org is None:
        raise OrganizationNotFound(f"organization {org_id} not found", {"org_id": str(org_id)})
    await record(ctx, CROSS_ORG_ACCESS, org_id=org_id, actor_id=own.actor_id, target_id=org_id,
                 target_type="organization", metadata={"crossOrgAccess": True, "operation": "key.act_in_org",
                                                       "actorOrgId": str(own.org_id), "keyId": own.key_id})
    writable, _ = writability(org)
    return own.model_copy(update={"org_id": org_id, "org_status": org.status, "writable": writable,
                                  "scopes": own.scopes if writable else list(read_only_scopes(own.scopes))})
