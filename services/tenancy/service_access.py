"""Roles and policies, the RBAC check, quotas and rate limits of an org."""

import secrets
from fnmatch import fnmatchcase
from typing import Any

from services.tenancy import repository as repo, repository_access as access_repo
from services.tenancy.models import MONTHLY_METRICS, PLAN_METRICS, TENANCY_COUNTED_METRICS, role_id
from services.tenancy.service import (
    Actor,
    effective_policies,
    enter_org,
    record,
    require_writable,
    resolve_actor,
    writability,
)
from services.tenancy.service_keys import Credentials, effective_rate_rules
from services.tenancy.service_two_factor import require_second_factor
from services.tenancy.state import TenancyState
from shared.contracts.tenancy import (
    Check,
    CheckResult,
    OrganizationNotFound,
    PolicyAdd,
    PolicyInfo,
    Quota,
    QuotaChange,
    QuotaNotFound,
    QuotaSet,
    RateHit,
    RateLimitRule,
    RateRuleSet,
    RoleCreate,
    RoleInfo,
)
from shared.kernel.errors import Forbidden, InvalidRequest, NotFound, OneError, QuotaExceeded, RateLimited
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType, Role
from shared.kernel.rbac import BUILTIN_POLICIES, BUILTIN_ROLES, READ_ACTIONS, decide, require
from shared.runtime.context import WorkContext


def _policy_info(row: Any) -> PolicyInfo:
    return PolicyInfo(id=row.id, role=row.role, resource=row.resource, action=row.action, effect=row.effect, priority=row.priority)


async def list_roles(ctx: WorkContext) -> list[RoleInfo]:
    actor = await resolve_actor(ctx)
    actor.require("roles", "list")
    added: dict[str, list[PolicyInfo]] = {}
    for row in await access_repo.org_policies(ctx.session, actor.org_id):
        added.setdefault(row.role, []).append(_policy_info(row))
    roles = [
        RoleInfo(id=role_id(actor.org_id, name), name=name, builtin=True, policies=[
            *(PolicyInfo(role=name, resource=p.resource, action=p.action, effect=p.effect.value, priority=p.priority, builtin=True)
              for p in policies),
            *added.get(name, []),
        ])
        for name, policies in BUILTIN_POLICIES.items()
    ]
    for row in await access_repo.custom_roles(ctx.session, actor.org_id):
        roles.append(RoleInfo(id=role_id(actor.org_id, row.name), name=row.name, builtin=False,
                              description=row.description, policies=added.get(row.name, [])))
    return roles


async def _writable_own_org(ctx: WorkContext, actor: Actor) -> Any:
    org = await repo.get_org(ctx.session, actor.org_id)
    require_writable(org)
    return org


async def create_role(ctx: WorkContext, creds: Credentials, payload: RoleCreate) -> RoleInfo:
    actor = await resolve_actor(ctx)
    await _writable_own_org(ctx, actor)
    actor.require("roles", "create")
    if payload.name in BUILTIN_ROLES:
        raise InvalidRequest(f"{payload.name} is a built-in role; add policies to it instead")
    await require_second_factor(ctx, creds, actor.org_id, actor.person_id, payload.otp)
    await access_repo.insert_role(ctx.session, {"org_id": actor.org_id, "name": payload.name, "description": payload.description})
    for policy in payload.policies:
        await access_repo.insert_policy(ctx.session, {"id": uuid7(), "org_id": actor.org_id, "role": payload.name,
                                                      **policy.model_dump()})
    await record(ctx, EventType.ENTITY_CREATED, org_id=actor.org_id, target_id=role_id(actor.org_id, payload.name),
                 target_type="role", metadata={"role": payload.name, "policies": [p.model_dump() for p in payload.policies]})
    policies = [_policy_info(r) for r in await access_repo.org_policies(ctx.session, actor.org_id, payload.name)]
    return RoleInfo(id=role_id(actor.org_id, payload.name), name=payload.name, builtin=False,
                    description=payload.description, policies=policies)


async def add_policy(ctx: WorkContext, replica: TenancyState, payload: PolicyAdd) -> PolicyInfo:
    actor = await resolve_actor(ctx)
    await _writable_own_org(ctx, actor)
    actor.require("policies", "create")
    if payload.role == Role.PLATFORM_OWNER:
        raise Forbidden("the platform owner's policies are not an organization's to change")
    if payload.role not in BUILTIN_ROLES and not await access_repo.role_exists(ctx.session, actor.org_id, payload.role):
        raise NotFound(f"no role {payload.role!r} in this organization")
    await require_second_factor(ctx, replica.keys, actor.org_id, actor.person_id, payload.otp)
    policy_id, policy = uuid7(), payload.model_dump(exclude={"otp"})
    await access_repo.insert_policy(ctx.session, {"id": policy_id, "org_id": actor.org_id, **policy})
    replica.invalidate_keys(org_id=actor.org_id)
    await record(ctx, EventType.ENTITY_UPDATED, org_id=actor.org_id, target_id=role_id(actor.org_id, payload.role),
                 target_type="role", metadata={"role": payload.role, "policyAdded": {"id": str(policy_id), **policy}})
    return PolicyInfo(id=policy_id, **policy)


async def remove_policy(ctx: WorkContext, replica: TenancyState, policy_id: Any, otp: str | None) -> None:
    actor = await resolve_actor(ctx)
    await _writable_own_org(ctx, actor)
    actor.require("policies", "delete")
    await require_second_factor(ctx, replica.keys, actor.org_id, actor.person_id, otp)
    role = await access_repo.delete_policy(ctx.session, actor.org_id, policy_id)
    if role is None:
        raise NotFound(f"no policy {policy_id} in this organization")
    replica.invalidate_keys(org_id=actor.org_id)
    await record(ctx, EventType.ENTITY_UPDATED, org_id=actor.org_id, target_id=role_id(actor.org_id, role),
                 target_type="role", metadata={"role": role, "policyRemoved": str(policy_id)})


async def check(ctx: WorkContext, payload: Check) -> CheckResult:
    """The caller's (or, with members:read, another member's) decision for one resource and action."""
    actor = await resolve_actor(ctx)
    org = await repo.get_org(ctx.session, actor.org_id)
    if payload.person_id is None or payload.person_id == actor.person_id:
        decision, role = actor.decide(payload.resource, payload.action), actor.role
    else:
        actor.require("members", "read")
        member = await repo.actor_in_org(ctx.session, actor.org_id, payload.person_id)
        if member is None:
            raise NotFound(f"{payload.person_id} is not a member of this organization")
        role = Role.PLATFORM_OWNER.value if member.person_role == Role.PLATFORM_OWNER else member.role
        policies = await effective_policies(ctx.session, actor.org_id, role, list(member.permissions))
        decision = decide(policies, payload.resource, payload.action)
    writable, why = writability(org)
    if decision.allowed and not writable and payload.action not in READ_ACTIONS:
        return CheckResult(allowed=False, reason=why, role=role)
    return CheckResult(allowed=decision.allowed, reason=decision.reason, role=role)


def quota_model(row: Any) -> Quota:
    return Quota(metric=row.metric, limit=row.quota_limit, used=row.used, resets_monthly=row.resets_monthly,
                 period_start=row.period_start, reserved=row.reserved)


async def usage(ctx: WorkContext, target: Any) -> list[Quota]:
    actor = await resolve_actor(ctx)
    actor.require("quotas", "read")
    org = await enter_org(ctx, actor, target, "quota.usage", write=False)
    return [quota_model(r) for r in await access_repo.usage_of(ctx.session, org.id)]


SERVICE_RELEASED_METRICS = frozenset({"inference"})
"""Tenancy-counted metrics a service identity may give back: the agents service reserves a run's inference
units up front and returns what the run did not use (with the `quotas:release` grant)."""


def is_service_identity(ctx: WorkContext) -> bool:
    """A service's own work (`shared.runtime.context.service_identity`): role `service:<name>`, its grants as its
    permissions. No edge can stamp it: the gateway sends only the roles tenancy verified for a key, and an org's
    role names cannot hold a colon; only a service holding bus credentials can (and those can act as anyone)."""
    return (ctx.auth.role or "").startswith("service:")


async def quota_caller(ctx: WorkContext, *, writable: bool = True) -> tuple[Actor | None, Any]:
    """The member asking and its org, writable (unless `writable` is False: settling work that committed already);
    a service identity that is no member (the agents service on behalf of an agent, or as itself) gets None and is
    checked against its grants, in the envelope's org only."""
    try:
        actor: Actor | None = await resolve_actor(ctx)
    except Forbidden:
        if not is_service_identity(ctx):
            raise
        actor = None
    org = await repo.get_org(ctx.session, ctx.auth.org_id)
    if org is None:
        raise OrganizationNotFound(f"organization {ctx.auth.org_id} not found")
    if writable:
        require_writable(org)
    return actor, org


def require_caller(ctx: WorkContext, actor: Actor | None, resource: str, action: str) -> None:
    if actor is None:
        require(ctx.auth, resource, action)
    else:
        actor.require(resource, action)


async def consume(ctx: WorkContext, payload: QuotaChange) -> Quota | OneError:
    """Take `amount` atomically, or return (not raise) the error, so the caller commits its event first."""
    actor, org = await quota_caller(ctx)
    require_caller(ctx, actor, "quotas", "consume")
    row = await access_repo.consume_quota(ctx.session, org.id, payload.metric, payload.amount)
    if row is not None:
        return quota_model(row)
    current = await access_repo.get_quota(ctx.session, org.id, payload.metric)
    if current is None:
        return QuotaNotFound(f"no quota {payload.metric!r} in this organization", {"metric": payload.metric})
    details = {"metric": payload.metric, "limit": current.quota_limit, "used": current.used, "requested": payload.amount}
    if payload.metric == "inference":
        await record(ctx, EventType.INFERENCE_QUOTA_EXCEEDED, org_id=org.id, target_id=org.id,
                     target_type="organization", metadata=details)
    return QuotaExceeded(f"organization {org.slug} has used its {payload.metric} quota", details)


def require_quota_manager(actor: Actor, metric: str) -> None:
    """What sizing a quota takes: plan metrics are the platform's (they come with the plan), others quotas:update."""
    if metric in PLAN_METRICS and not actor.is_platform_owner:
        raise Forbidden(f"only a platform owner changes the {metric} quota (it comes with the plan)", {"metric": metric})
    actor.require("quotas", "update")


async def release(ctx: WorkContext, payload: QuotaChange) -> Quota:
    """A service gives back what it took (graph: a deleted thing; agents: a run's unused inference units). Usage
    that tenancy counts itself is released only by a quota manager, or any member could undo the org's plan usage;
    a service identity may release `SERVICE_RELEASED_METRICS` with its `quotas:release` grant, no other."""
    actor, org = await quota_caller(ctx)
    if payload.metric not in TENANCY_COUNTED_METRICS:
        require_caller(ctx, actor, "quotas", "consume")
    elif actor is not None:
        require_quota_manager(actor, payload.metric)
    elif payload.metric in SERVICE_RELEASED_METRICS:
        require(ctx.auth, "quotas", "release")
    else:
        raise Forbidden(f"a service may not release the {payload.metric} quota", {"metric": payload.metric})
    row = await access_repo.release_quota(ctx.session, org.id, payload.metric, payload.amount)
    if row is None:
        raise QuotaNotFound(f"no quota {payload.metric!r} in this organization", {"metric": payload.metric})
    return quota_model(row)


async def set_limit(ctx: WorkContext, payload: QuotaSet) -> Quota:
    """Plan metrics are the platform's to change; an org may register and size its own metrics."""
    actor = await resolve_actor(ctx)
    require_quota_manager(actor, payload.metric)
    org = await enter_org(ctx, actor, payload.org_id, "quota.set_limit", write=True, check_status=not actor.is_platform_owner)
    resets = payload.resets_monthly or payload.metric in MONTHLY_METRICS
    await access_repo.set_quota_limit(ctx.session, org.id, payload.metric, payload.limit, resets)
    await record(ctx, EventType.ORGANIZATION_UPDATED, org_id=org.id, target_id=org.id, target_type="organization",
                 metadata={"changes": {"limits": {payload.metric: payload.limit}}})
    return quota_model(await access_repo.get_quota(ctx.session, org.id, payload.metric))


DEFAULT_OPERATION_RULES: dict[str, tuple[int, int]] = {"plugin_install": (10, 3600), "plugin_execution": (100, 60)}
"""Operations limited even when the org set no rule for them (seed 004's plugin installs per hour and action
executions per minute); an org's own `operation` rule matching one replaces its default."""


async def hit(ctx: WorkContext, payload: RateHit) -> tuple[int, float]:
    """Count one call against every window that applies (org, operation, key); all-or-nothing.

    The caller must be a member of the envelope's org (its windows are the ones
    counted), and a `key_id` must be one of the caller's own keys. Windows start
    and end on the database clock, so replicas share them whatever their own
    clocks say. A full window raises `rate_limited`;
    raising rolls back the counts already taken in this call, so a refused call
    costs no other window anything.
    """
    org_id = ctx.auth.org_id
    if await repo.actor_in_org(ctx.session, org_id, ctx.auth.actor_id) is None:
        raise Forbidden("the actor is not a member of this organization")
    org = await repo.get_org(ctx.session, org_id)
    if org is None:
        raise NotFound("no such organization")
    rules = await effective_rate_rules(ctx.session, org)
    buckets = [("org", "org", r.max_calls, r.window_seconds) for r in rules if r.scope == "org"]
    operation_rules = [r for r in rules if r.scope == "operation" and fnmatchcase(payload.operation, r.operation)]
    buckets += [("operation", f"op:{r.operation}", r.max_calls, r.window_seconds) for r in operation_rules]
    if not operation_rules and payload.operation in DEFAULT_OPERATION_RULES:
        limit, seconds = DEFAULT_OPERATION_RULES[payload.operation]
        buckets.append(("operation", f"op:{payload.operation}", limit, seconds))
    if payload.key_id is not None:
        key = await access_repo.get_key(ctx.session, org_id, payload.key_id)
        if key is None or key.person_id != ctx.auth.actor_id:  # else one member could drain another's window
            raise Forbidden("key_id is not one of the caller's keys in this organization", {"key_id": payload.key_id})
        buckets += [("key", f"key:{payload.key_id}", r.max_calls, r.window_seconds) for r in rules if r.scope == "key"]
    remaining, reset_after = None, 0.0
    for scope, bucket, limit, seconds in buckets:
        calls, left = await access_repo.hit_window(ctx.session, org_id, bucket, limit, seconds)
        if calls is None:
            raise RateLimited(f"too many calls ({scope} limit {limit} per {seconds}s); retry in {left:.1f}s",
                              {"retry_after": round(left, 3), "scope": scope, "limit": limit, "window_seconds": seconds})
        if remaining is None or limit - calls < remaining:
            remaining, reset_after = limit - calls, left
    if secrets.randbelow(200) == 0:
        await access_repo.prune_windows(ctx.session, org_id, 86400)
    return remaining or 0, round(reset_after, 3)


async def set_rate_rule(ctx: WorkContext, replica: TenancyState, payload: RateRuleSet) -> RateLimitRule:
    actor = await resolve_actor(ctx)
    org = await enter_org(ctx, actor, payload.org_id, "rate_limit.set", write=True)
    actor.require("rate_limits", "update")
    operation = payload.operation if payload.scope == "operation" else "*"
    await access_repo.set_rate_rule(ctx.session, org.id, payload.scope, operation, payload.max_calls, payload.window_seconds)
    rule = RateLimitRule(scope=payload.scope, operation=operation, max_calls=payload.max_calls, window_seconds=payload.window_seconds)
    await record(ctx, EventType.ORGANIZATION_UPDATED, org_id=org.id, target_id=org.id, target_type="organization",
                 metadata={"changes": {"rateLimit": rule.model_dump()}})
    replica.invalidate_keys(org_id=org.id)  # verified keys carry the rules: the edge counts with the new ones
    return rule


async def list_rate_rules(ctx: WorkContext) -> list[RateLimitRule]:
    actor = await resolve_actor(ctx)
    actor.require("rate_limits", "read")
    return [RateLimitRule(scope=r.scope, operation=r.operation, max_calls=r.max_calls, window_seconds=r.window_seconds)
            for r in await access_repo.rate_rules(ctx.session, actor.org_id)]
