"""Tenancy's core rules: who the actor is, which org they may touch, and organizations and people.

Tenancy never trusts a role stamped on the envelope: it is the authority, so it
resolves the actor's role and policies from its own tables on every request.
Handlers pass the request context in; this module touches no SQL and no NATS.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy import repository as repo, repository_access as access_repo, repository_packs as packs_repo
from services.tenancy.models import MONTHLY_METRICS, PLAN_LIMITS, PLAN_METRICS
from services.tenancy.service_two_factor import require_second_factor
from services.tenancy.state import TenancyState
from shared.contracts.tenancy import (
    EmailNotVerified,
    Membership,
    Organization,
    OrganizationCreate,
    OrganizationNotFound,
    OrganizationNotWritable,
    OrganizationUpdate,
    OrgBilling,
    OrgLimits,
    OrgSettings,
    Person,
    PersonIn,
    PersonNotFound,
    ProfileUpdate,
    PublicOrg,
    SettingsPatch,
    SignupClosed,
)
from shared.kernel.errors import Forbidden
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType, OrgPlan, OrgStatus, Role
from shared.kernel.rbac import BUILTIN_POLICIES, Decision, Effect, Policy, decide, scope_allows
from shared.runtime.context import WorkContext

CROSS_ORG_ACCESS = EventType.DASHBOARD_VIEWED
"""How a platform owner's access to another org is logged (in that org), with `metadata.crossOrgAccess`."""


@dataclass(frozen=True, slots=True)
class Actor:
    person_id: UUID
    org_id: UUID
    role: str
    is_platform_owner: bool
    policies: tuple[Policy, ...]
    scopes: tuple[str, ...]

    def decide(self, resource: str, action: str) -> Decision:
        if not scope_allows(self.scopes, resource, action):
            return Decision(False, f"the API key's scopes do not include {resource}:{action}")
        return decide(self.policies, resource, action)

    def require(self, resource: str, action: str) -> None:
        decision = self.decide(resource, action)
        if not decision.allowed:
            raise Forbidden(f"{self.role} may not {action} {resource}: {decision.reason}", {"resource": resource, "action": action})


def now() -> datetime:
    return datetime.now(UTC)


def member_grants(permissions: list[str]) -> tuple[Policy, ...]:
    """A member's own `permissions` (`resource:action`, or a bare action for any resource) are extra allows."""
    grants = []
    for permission in permissions:
        resource, _, action = permission.rpartition(":") if ":" in permission else ("*", "", permission)
        grants.append(Policy(resource, action, Effect.ALLOW, 0))
    return tuple(grants)


async def effective_policies(session: AsyncConnection, org_id: UUID, role: str, permissions: list[str]) -> tuple[Policy, ...]:
    """The built-in role's policies, what the org added to the role, and the member's own grants."""
    rows = await access_repo.org_policies(session, org_id, role)
    custom = tuple(Policy(r.resource, r.action, Effect(r.effect), r.priority) for r in rows)
    return BUILTIN_POLICIES.get(role, ()) + custom + member_grants(permissions)


async def resolve_actor(ctx: WorkContext) -> Actor:
    auth = ctx.auth
    row = await repo.actor_in_org(ctx.session, auth.org_id, auth.actor_id)
    if row is None:
        raise Forbidden("the actor is not a member of this organization")
    is_platform_owner = row.person_role == Role.PLATFORM_OWNER
    role = Role.PLATFORM_OWNER.value if is_platform_owner else row.role
    policies = await effective_policies(ctx.session, auth.org_id, role, list(row.permissions))
    return Actor(auth.actor_id, auth.org_id, role, is_platform_owner, policies, tuple(ctx.envelope.scopes))


async def record(
    ctx: WorkContext,
    event_type: str,
    *,
    org_id: UUID,
    target_id: UUID | None = None,
    target_type: str | None = None,
    metadata: dict[str, Any] | None = None,
    actor_id: UUID | None = None,
) -> None:
    """Stage an event in this request's transaction; the actor defaults to the envelope's."""
    if actor_id is None or actor_id == ctx.envelope.actor_id:
        await ctx.emit(event_type, target_id=target_id, target_type=target_type, metadata=metadata, org_id=org_id)
        return
    ctx.staged_events += 1
    payload = EventPayload(target_id=target_id, target_type=target_type, metadata=metadata or {})
    await ctx.runtime.outbox.add_event(
        ctx.session, event_type=event_type, org_id=org_id, actor_id=actor_id,
        payload=payload.model_dump(mode="json"), protocol=ctx.envelope.protocol, cause=ctx.envelope,
    )


def writability(org: Any) -> tuple[bool, str]:
    if org.status in (OrgStatus.SUSPENDED, OrgStatus.CANCELLED):
        return False, f"organization {org.slug} is {org.status}: it can read but not write"
    settings = OrgSettings.model_validate(org.settings)
    if org.status == OrgStatus.TRIAL and org.trial_ends_at and org.trial_ends_at <= now() and settings.on_trial_end == "read_only":
        return False, f"the trial of organization {org.slug} ended at {org.trial_ends_at.isoformat()}: it can read but not write"
    return True, ""


def require_writable(org: Any) -> None:
    writable, reason = writability(org)
    if not writable:
        raise OrganizationNotWritable(reason, {"org_id": str(org.id), "status": org.status})


async def enter_org(
    ctx: WorkContext, actor: Actor, target: UUID | None, operation: str, *, write: bool, check_status: bool = True
) -> Any:
    """The org this request works on: the actor's own, or (platform owners only, logged) another one."""
    org_id = target or actor.org_id
    if org_id != actor.org_id:
        if not actor.is_platform_owner:
            raise Forbidden("only a platform owner may act on another organization", {"org_id": str(org_id)})
        await repo.switch_org(ctx.session, org_id)
    org = await repo.get_org(ctx.session, org_id, for_update=write)
    if org is None:
        raise OrganizationNotFound(f"organization {org_id} not found")
    if org_id != actor.org_id:
        await record(
            ctx, CROSS_ORG_ACCESS, org_id=org_id, target_id=org_id, target_type="organization",
            metadata={"crossOrgAccess": True, "operation": operation, "write": write, "actorOrgId": str(actor.org_id)},
        )
    if write and check_status:
        require_writable(org)
    return org


async def load_org(ctx: WorkContext, org: Any) -> Organization:
    usage = {q.metric: q for q in await access_repo.usage_of(ctx.session, org.id)}
    return Organization(
        id=org.id, name=org.name, slug=org.slug, domain=org.domain, status=org.status, plan=org.plan,
        is_platform=org.is_platform,
        limits=OrgLimits(**{m: usage[m].quota_limit for m in PLAN_METRICS if m in usage}),
        usage=OrgLimits(**{m: usage[m].used for m in PLAN_METRICS if m in usage}),
        billing=OrgBilling(customer_id=org.billing_customer_id, subscription_id=org.billing_subscription_id),
        settings=OrgSettings.model_validate(org.settings), trial_ends_at=org.trial_ends_at,
        created_at=org.created_at, updated_at=org.updated_at,
        installed_packs=await packs_repo.installed_pack_names(ctx.session, org.id),
    )


def person_model(row: Any, org_ids: list[UUID]) -> Person:
    return Person(
        id=row.id, email=row.email, username=row.username, display_name=row.display_name, role=row.role,
        bio=row.bio, avatar=row.avatar, current_org_id=row.current_org_id, email_verified_at=row.email_verified_at,
        organizations=org_ids,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def membership_model(row: Any) -> Membership:
    return Membership(
        org_id=row.org_id, person_id=row.person_id, role=row.role, permissions=list(row.permissions),
        invited_by=row.invited_by, invited_at=row.invited_at, joined_at=row.joined_at,
    )


def merged_settings(current: dict[str, Any], patch: SettingsPatch) -> tuple[OrgSettings, dict[str, Any]]:
    changes = patch.model_dump(exclude_none=True)
    return OrgSettings.model_validate({**current, **changes}), changes


async def insert_organization(
    ctx: WorkContext, payload: OrganizationCreate, *, is_platform: bool = False, actor_id: UUID | None = None
) -> Any:
    """Rows of a new org (with its plan's quotas); leaves the transaction working in the new org."""
    org_id = uuid7()
    settings, _ = merged_settings(OrgSettings().model_dump(), payload.settings)
    await repo.switch_org(ctx.session, org_id)
    await repo.insert_org(ctx.session, {
        "id": org_id, "name": payload.name, "slug": payload.slug, "domain": payload.domain,
        "status": payload.status.value, "plan": payload.plan.value, "is_platform": is_platform,
        "billing_customer_id": payload.billing.customer_id, "billing_subscription_id": payload.billing.subscription_id,
        "settings": settings.model_dump(), "trial_ends_at": payload.trial_ends_at,
    })
    await set_plan_limits(ctx, org_id, payload.plan)
    org = await repo.get_org(ctx.session, org_id)
    await record(
        ctx, EventType.ORGANIZATION_CREATED, org_id=org_id, target_id=org_id, target_type="organization",
        metadata={"name": org.name, "slug": org.slug, "plan": org.plan, "status": org.status}, actor_id=actor_id,
    )
    return org


async def set_plan_limits(ctx: WorkContext, org_id: UUID, plan: OrgPlan) -> None:
    for metric, limit in PLAN_LIMITS[plan].items():
        await access_repo.set_quota_limit(ctx.session, org_id, metric, limit, metric in MONTHLY_METRICS)


async def ensure_person(
    ctx: WorkContext, person: PersonIn, role: Role, org_id: UUID, person_id: UUID | None = None
) -> tuple[Any, bool]:
    """The person with this email, created (and `user_registered` logged) if new."""
    async with repo.platform_access(ctx.session):
        existing = await repo.find_person_by_email(ctx.session, person.email)
    if existing is not None:
        return existing, False
    person_id = person_id or uuid7()
    # A derived username carries 48 random bits: with 24, two of a few thousand `info@` addresses met by chance.
    username = person.username or f"{person.email.split('@')[0][:27]}-{secrets.token_hex(6)}"
    await repo.insert_person(ctx.session, {
        "id": person_id, "email": person.email, "username": username,
        "display_name": person.display_name, "role": role.value, "current_org_id": org_id,
    })
    await record(
        ctx, EventType.USER_REGISTERED, org_id=org_id, target_id=person_id, target_type=thing_type_of(role),
        metadata={"email": person.email, "username": username, "role": role.value}, actor_id=person_id,
    )
    async with repo.platform_access(ctx.session):
        return await repo.get_person(ctx.session, person_id), True


def thing_type_of(role: str) -> str:
    """The graph thing that stands for a person: the spec's `creator` or `audience_member`."""
    return "audience_member" if role == Role.CUSTOMER else "creator"


async def get_organization(ctx: WorkContext, target: UUID | None) -> Organization:
    actor = await resolve_actor(ctx)
    actor.require("organization", "read")
    return await load_org(ctx, await enter_org(ctx, actor, target, "organization.get", write=False))


async def resolve_public(ctx: WorkContext, ref: str) -> PublicOrg:
    """An org as a public URL names it (slug, or id), for the gateway's A2A URLs: its id, slug and name only; a
    suspended or cancelled org is not found (its agents answer no one)."""
    try:
        org_id: UUID | None = UUID(ref)
    except ValueError:
        org_id = None
    async with repo.platform_access(ctx.session):
        org = await (repo.get_org(ctx.session, org_id) if org_id else repo.find_org_by_slug(ctx.session, ref))
    if org is None or org.status not in (OrgStatus.ACTIVE, OrgStatus.TRIAL):
        raise OrganizationNotFound(f"no organization {ref!r}")
    return PublicOrg(id=org.id, slug=org.slug, name=org.name)


async def list_organizations(ctx: WorkContext, limit: int, offset: int) -> list[Organization]:
    actor = await resolve_actor(ctx)
    if not actor.is_platform_owner:
        raise Forbidden("only a platform owner lists organizations")
    async with repo.platform_access(ctx.session):
        orgs = [await load_org(ctx, row) for row in await repo.list_orgs(ctx.session, limit, offset)]
    await record(
        ctx, CROSS_ORG_ACCESS, org_id=actor.org_id,
        metadata={"crossOrgAccess": True, "operation": "organization.list", "write": False, "count": len(orgs)},
    )
    return orgs


def platform_only_changes(payload: OrganizationUpdate) -> set[str]:
    """The fields of an update only a platform owner may change: what the org pays for and how long it may try it.

    `settings.on_trial_end` is one of them: an owner who could set it to `continue` would never need to pay.
    """
    fields = {"plan", "status", "billing", "trial_ends_at"} & payload.model_fields_set
    if payload.settings is not None and payload.settings.on_trial_end is not None:
        fields.add("settings.on_trial_end")
    return fields


async def update_organization(ctx: WorkContext, replica: TenancyState, payload: OrganizationUpdate) -> Organization:
    """Name, domain and settings: org owners (org must be writable). Plan, status, billing, trial (its end and
    what happens then): platform owners.

    Sensitive: needs a two-factor code when the actor's org enables two-factor.
    Requiring email verification needs the acting owner's own email verified,
    so an owner cannot restrict their own key by accident.
    """
    actor = await resolve_actor(ctx)
    platform_fields = platform_only_changes(payload)
    if platform_fields and not actor.is_platform_owner:
        raise Forbidden(f"only a platform owner changes {', '.join(sorted(platform_fields))}")
    owner_fields = {"name", "domain", "settings"} & payload.model_fields_set
    org = await enter_org(ctx, actor, payload.org_id, "organization.update", write=True,
                          check_status=bool(owner_fields) and not actor.is_platform_owner)
    if owner_fields:
        actor.require("organization", "update")
    await require_second_factor(ctx, replica.keys, actor.org_id, actor.person_id, payload.otp)
    if payload.settings is not None and payload.settings.require_email_verification and not actor.is_platform_owner:
        person = await repo.get_person(ctx.session, actor.person_id)
        if person is None or person.email_verified_at is None:
            raise EmailNotVerified("verify your own email (tenancy.email.verification.request) before requiring it of every member")
    values: dict[str, Any] = {}
    if payload.name is not None:
        values["name"] = payload.name
    if "domain" in payload.model_fields_set:
        values["domain"] = payload.domain
    if payload.status is not None:
        values["status"] = payload.status.value
    if payload.plan is not None:
        values["plan"] = payload.plan.value
        await set_plan_limits(ctx, org.id, payload.plan)
    if payload.billing is not None:
        values["billing_customer_id"], values["billing_subscription_id"] = payload.billing.customer_id, payload.billing.subscription_id
    if "trial_ends_at" in payload.model_fields_set:
        values["trial_ends_at"] = payload.trial_ends_at
    if payload.settings is not None:
        settings, changes = merged_settings(org.settings, payload.settings)
        await repo.update_org(ctx.session, org.id, {"settings": settings.model_dump()})
        await record(ctx, EventType.SETTINGS_UPDATED, org_id=org.id, target_id=org.id, target_type="organization",
                     metadata={"changes": changes})
    if values:
        await repo.update_org(ctx.session, org.id, values)
        changed = {k: (str(v) if isinstance(v, datetime) else v) for k, v in values.items()}
        await record(ctx, EventType.ORGANIZATION_UPDATED, org_id=org.id, target_id=org.id, target_type="organization",
                     metadata={"changes": changed})
    if "status" in values or "trial_ends_at" in values or "plan" in values or payload.settings is not None:
        replica.invalidate_keys(org_id=org.id)
    return await load_org(ctx, await repo.get_org(ctx.session, org.id))


async def create_organization(ctx: WorkContext, payload: OrganizationCreate) -> Any:
    actor = await resolve_actor(ctx)
    if not actor.is_platform_owner:
        raise Forbidden("only a platform owner creates organizations; others use signup")
    return await insert_organization(ctx, payload)


async def check_signup_allowed(ctx: WorkContext, join: str | None) -> Any:
    """The org a signup joins (its settings allow it), or the platform org (it allows new orgs)."""
    async with repo.platform_access(ctx.session):
        org = await (repo.find_org_by_slug(ctx.session, join) if join else repo.find_platform_org(ctx.session))
    if org is None:
        raise OrganizationNotFound(f"no organization {join!r}") if join else SignupClosed("the platform is not bootstrapped")
    settings = OrgSettings.model_validate(org.settings)
    if not settings.allow_signups:
        raise SignupClosed(f"{'organization ' + org.slug if join else 'the platform'} does not allow signups")
    require_writable(org)
    return org


def trial_end(days: int) -> datetime | None:
    return now() + timedelta(days=days) if days else None


async def me(ctx: WorkContext) -> Person:
    await resolve_actor(ctx)
    row = await repo.get_person(ctx.session, ctx.auth.actor_id)
    if row is None:
        raise PersonNotFound("no such person")
    async with repo.platform_access(ctx.session):
        org_ids = await repo.org_ids_of(ctx.session, row.id)
    return person_model(row, org_ids)


async def update_profile(ctx: WorkContext, payload: ProfileUpdate) -> Person:
    await resolve_actor(ctx)
    values = payload.model_dump(exclude_none=True)
    if "current_org_id" in values:
        async with repo.platform_access(ctx.session):
            if values["current_org_id"] not in await repo.org_ids_of(ctx.session, ctx.auth.actor_id):
                raise Forbidden("one can only switch to an organization one belongs to")
    if not values:
        return await me(ctx)
    await repo.update_person(ctx.session, ctx.auth.actor_id, values)
    person = await me(ctx)
    await record(ctx, EventType.PROFILE_UPDATED, org_id=ctx.auth.org_id, target_id=person.id,
                 target_type=thing_type_of(person.role), metadata={"changed": sorted(values)})
    return person
