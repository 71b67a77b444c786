"""Membership (the spec's `member_of`): signup, invite and accept, change role, remove.

Every change of who belongs to an org locks the org's row first, so the "at
least one owner" rule and the `users` quota hold under concurrent requests.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from services.tenancy import repository as repo, repository_access as access_repo
from services.tenancy.schemas import MailDrop
from services.tenancy.service import (
    Actor,
    check_signup_allowed,
    ensure_person,
    enter_org,
    insert_organization,
    load_org,
    membership_model,
    now,
    person_model,
    record,
    require_writable,
    resolve_actor,
    thing_type_of,
    trial_end,
)
from services.tenancy.service_keys import Credentials, issue_key
from services.tenancy.service_two_factor import require_second_factor
from services.tenancy.state import TenancyState
from services.tenancy.tokens import new_token, token_row_id
from shared.contracts.tenancy import (
    DomainNotAllowed,
    Invite,
    InviteAccept,
    InviteCreate,
    InviteDelivery,
    InviteInvalid,
    InviteNeedsSignIn,
    Joined,
    LastOwner,
    Member,
    MemberRemove,
    MemberRemoved,
    Membership,
    OrganizationCreate,
    OrgSettings,
    PersonIn,
    PersonNotFound,
    RoleChange,
    Signup,
)
from shared.kernel.envelope import Envelope
from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, QuotaExceeded
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType, OrgStatus, Role
from shared.kernel.rbac import BUILTIN_ROLES
from shared.runtime.context import WorkContext


def check_domain(org: Any, email: str) -> None:
    allowed = OrgSettings.model_validate(org.settings).allowed_domains
    domain = email.rsplit("@", 1)[-1]
    if allowed and domain not in allowed:
        raise DomainNotAllowed(f"{domain} is not an allowed email domain of {org.slug}", {"allowed_domains": allowed})


async def check_assignable(ctx: WorkContext, actor: Actor | None, org_id: UUID, role: str) -> None:
    """A role exists in the org, is not the platform's, and (for owners) is granted by an owner."""
    if role == Role.PLATFORM_OWNER:
        raise Forbidden("platform_owner is not an organization role")
    if role not in BUILTIN_ROLES and not await access_repo.role_exists(ctx.session, org_id, role):
        raise InvalidRequest(f"no role {role!r} in this organization")
    if role == Role.ORG_OWNER and actor is not None and actor.role not in (Role.ORG_OWNER, Role.PLATFORM_OWNER):
        raise Forbidden("only an owner can make someone an owner")


async def join(
    ctx: WorkContext, org: Any, person_id: UUID, role: str, permissions: list[str],
    invited_by: UUID | None = None, invited_at: Any = None,
) -> Membership:
    """Add a member: takes one from the org's `users` quota and logs `user_joined_org`."""
    if await access_repo.consume_quota(ctx.session, org.id, "users", 1) is None:
        raise QuotaExceeded(f"organization {org.slug} has reached its users limit", {"metric": "users"})
    await repo.insert_membership(ctx.session, {
        "org_id": org.id, "person_id": person_id, "role": role, "permissions": permissions,
        "invited_by": invited_by, "invited_at": invited_at,
    })
    membership = membership_model(await repo.get_membership(ctx.session, org.id, person_id))
    await record(
        ctx, EventType.USER_JOINED_ORG, org_id=org.id, target_id=person_id, target_type=thing_type_of(role),
        metadata={"connection": "member_of", **membership.model_dump(mode="json", exclude={"org_id", "person_id"})},
        actor_id=person_id,
    )
    return membership


async def _joined(ctx: WorkContext, creds: Credentials, org: Any, person: Any, membership: Membership) -> Joined:
    key, _ = await issue_key(ctx, creds, org.id, person.id, name="first key")
    async with repo.platform_access(ctx.session):
        org_ids = await repo.org_ids_of(ctx.session, person.id)
    return Joined(person=person_model(person, org_ids), organization=await load_org(ctx, org), membership=membership, api_key=key)


async def signup(ctx: WorkContext, creds: Credentials, payload: Signup, trial_days: int) -> Joined:
    """Self-service: a new org owned by the new person (if the platform allows), or joining an org that allows it."""
    if (payload.organization is None) == (payload.join is None):
        raise InvalidRequest("a signup either creates an organization or joins one")
    gate = await check_signup_allowed(ctx, payload.join)
    check_domain(gate, payload.email)
    async with repo.platform_access(ctx.session):
        if await repo.find_person_by_email(ctx.session, payload.email) is not None:
            raise Conflict("someone already signed up with this email: ask for an invitation instead")
    person_id = uuid7()
    if payload.organization is not None:
        trial_ends_at = trial_end(trial_days)
        org = await insert_organization(ctx, OrganizationCreate(
            name=payload.organization.name, slug=payload.organization.slug,
            status=OrgStatus.TRIAL if trial_ends_at else OrgStatus.ACTIVE, trial_ends_at=trial_ends_at,
        ), actor_id=person_id)
        role = Role.ORG_OWNER
    else:
        org, role = gate, Role.CUSTOMER
        await repo.switch_org(ctx.session, org.id)
        org = await repo.get_org(ctx.session, org.id, for_update=True)
    person_in = PersonIn(email=payload.email, username=payload.username, display_name=payload.display_name)
    person, _ = await ensure_person(ctx, person_in, role, org.id, person_id)
    membership = await join(ctx, org, person.id, role.value, [])
    return await _joined(ctx, creds, org, person, membership)


def _invite_id(token: str) -> UUID:
    row_id = token_row_id("inv", token)
    if row_id is None:
        raise InviteInvalid("not an invitation token")
    return row_id


async def invite(
    ctx: WorkContext, replica: TenancyState, payload: InviteCreate, ttl_seconds: float
) -> tuple[Invite, str | None]:
    """A new email gets the token back (the inviter hands it over); an existing account gets it by mail only.

    The token proves nothing about an existing account once the inviter has seen
    it, and the person may have no key left to sign in with (they left every
    org), so for them only the mailbox's owner holds it. The mail is handed over
    as the transaction's last step, as for email verification: a failed hand-off
    rolls the invite and its event back.
    """
    actor = await resolve_actor(ctx)
    org = await enter_org(ctx, actor, payload.org_id, "member.invite", write=True)
    actor.require("members", "invite")
    issued = await issue_invite(ctx, replica, org, actor, payload, invited_by=actor.person_id, ttl_seconds=ttl_seconds)
    return issued.invite, issued.token


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    invite: Invite
    token: str | None
    event: Envelope


async def issue_invite(
    ctx: WorkContext, replica: TenancyState, org: Any, actor: Actor | None, payload: InviteCreate, *,
    invited_by: UUID, ttl_seconds: float, metadata: dict[str, Any] | None = None, by_mail: bool = False,
) -> IssuedInvite:
    """The invite itself, once the caller is allowed to make it: a member's request, or a signed webhook's mapping
    (`actor` None, `metadata` saying where it came from, `by_mail`: no one to hand a token to, so it is mailed).
    The token goes back only when it went to nobody else."""
    check_domain(org, payload.email)
    await check_assignable(ctx, actor, org.id, payload.role)
    async with repo.platform_access(ctx.session):
        existing = await repo.find_person_by_email(ctx.session, payload.email)
    delivery: InviteDelivery = "email" if existing is not None or by_mail else "token"
    invite_id = uuid7()
    token = new_token("inv", invite_id)
    expires_at = now() + timedelta(seconds=ttl_seconds)
    await repo.insert_invite(ctx.session, {
        "id": invite_id, "org_id": org.id, "email": payload.email, "role": payload.role,
        "permissions": payload.permissions, "token_hash": replica.keys.hash(token), "invited_by": invited_by,
        "expires_at": expires_at, "delivery": delivery,
    })
    row = await repo.get_invite(ctx.session, invite_id)
    event = await ctx.emit(EventType.USER_INVITED_TO_ORG, org_id=org.id, target_id=org.id, target_type="organization",
                           metadata={"inviteId": str(invite_id), "email": payload.email, "role": payload.role,
                                     "expiresAt": expires_at.isoformat(), "delivery": delivery, **(metadata or {})})
    if delivery == "email":
        await replica.send_mail(MailDrop(to=payload.email, purpose="invitation", token=token, expires_at=expires_at,
                                         organization=f"{org.name} ({org.slug})", role=payload.role))
    return IssuedInvite(Invite.model_validate(row, from_attributes=True), token if delivery == "token" else None, event)


async def _require_signed_in_as(ctx: WorkContext, person: Any) -> None:
    """The token went back to the inviter, so it proves nothing about an existing account: whoever
    accepts for one must be signed in as it, or an inviter would get a key to someone else's account."""
    envelope = ctx.envelope
    signed_in = envelope.actor_id == person.id and envelope.org_id is not None
    if signed_in:
        async with repo.platform_access(ctx.session):
            signed_in = await repo.actor_in_org(ctx.session, envelope.org_id, person.id) is not None
    if not signed_in:
        raise InviteNeedsSignIn(f"{person.email} already has an account: sign in as {person.email} (with one of "
                                "its API keys) to accept this invitation", {"email": person.email})


async def accept(ctx: WorkContext, creds: Credentials, payload: InviteAccept) -> Joined:
    """The invitee proves the token. A new person is registered; an existing one (same email) joins on the token
    alone when it was mailed to them, else (it went to the inviter, before they registered) only signed in."""
    invite_id = _invite_id(payload.token)
    async with repo.platform_access(ctx.session):
        row = await repo.get_invite(ctx.session, invite_id, for_update=True)
    if row is None or not creds.matches(payload.token.strip(), row.token_hash):
        raise InviteInvalid("unknown invitation")
    if row.accepted_at is not None:
        raise InviteInvalid("this invitation has already been used")
    if row.expires_at <= now():
        raise InviteInvalid(f"this invitation expired at {row.expires_at.isoformat()}")
    await repo.switch_org(ctx.session, row.org_id)
    org = await repo.get_org(ctx.session, row.org_id, for_update=True)
    require_writable(org)
    check_domain(org, row.email)
    await check_assignable(ctx, None, org.id, row.role)
    person_role = Role(row.role) if row.role in (Role.ORG_OWNER, Role.ORG_USER, Role.CUSTOMER) else Role.ORG_USER
    person_in = PersonIn(email=row.email, username=payload.username,
                         display_name=payload.display_name or row.email.split("@")[0])
    person, created = await ensure_person(ctx, person_in, person_role, org.id)
    if not created and row.delivery != "email":
        await _require_signed_in_as(ctx, person)
    membership = await join(ctx, org, person.id, row.role, list(row.permissions), row.invited_by, row.invited_at)
    await repo.mark_invite_accepted(ctx.session, org.id, invite_id, person.id)
    return await _joined(ctx, creds, org, person, membership)


async def list_members(ctx: WorkContext, target: UUID | None) -> tuple[list[Member], list[Invite]]:
    actor = await resolve_actor(ctx)
    actor.require("members", "list")
    org = await enter_org(ctx, actor, target, "member.list", write=False)
    members = [
        Member(**membership_model(r).model_dump(), email=r.email, username=r.username, display_name=r.display_name)
        for r in await repo.list_members(ctx.session, org.id)
    ]
    invites = [Invite.model_validate(r, from_attributes=True) for r in await repo.list_pending_invites(ctx.session, org.id)]
    return members, invites


async def _owned_membership(ctx: WorkContext, org: Any, person_id: UUID) -> Any:
    membership = await repo.get_membership(ctx.session, org.id, person_id, for_update=True)
    if membership is None:
        raise PersonNotFound(f"{person_id} is not a member of {org.slug}")
    return membership


async def _keep_an_owner(ctx: WorkContext, org: Any, membership: Any, what: str) -> None:
    if membership.role == Role.ORG_OWNER and await repo.count_owners(ctx.session, org.id) <= 1:
        raise LastOwner(f"the last owner of {org.slug} cannot {what}: make someone else an owner first")


async def change_role(ctx: WorkContext, replica: TenancyState, payload: RoleChange) -> Membership:
    actor = await resolve_actor(ctx)
    org = await enter_org(ctx, actor, payload.org_id, "member.change_role", write=True)
    actor.require("members", "update")
    membership = await _owned_membership(ctx, org, payload.person_id)
    await check_assignable(ctx, actor, org.id, payload.role)
    if membership.role == Role.ORG_OWNER and actor.role not in (Role.ORG_OWNER, Role.PLATFORM_OWNER):
        raise Forbidden("only an owner can change an owner's role")
    if payload.role != Role.ORG_OWNER:
        await _keep_an_owner(ctx, org, membership, "be demoted")
    await require_second_factor(ctx, replica.keys, actor.org_id, actor.person_id, payload.otp)
    values: dict[str, Any] = {"role": payload.role}
    if payload.permissions is not None:
        values["permissions"] = payload.permissions
    await repo.update_membership(ctx.session, org.id, payload.person_id, values)
    replica.invalidate_keys(org_id=org.id, person_id=payload.person_id)
    await record(ctx, EventType.ENTITY_UPDATED, org_id=org.id, target_id=payload.person_id, target_type="member_of",
                 metadata={"connection": "member_of", "from": membership.role, "to": payload.role,
                           "permissions": values.get("permissions", list(membership.permissions))})
    return membership_model(await repo.get_membership(ctx.session, org.id, payload.person_id))


async def remove(ctx: WorkContext, replica: TenancyState, payload: MemberRemove) -> MemberRemoved:
    """Anyone may leave; removing someone else needs members:remove (an owner, owner rights) and, where the
    actor's org enables two-factor, a current code."""
    actor = await resolve_actor(ctx)
    leaving = payload.person_id == actor.person_id and payload.org_id in (None, actor.org_id)
    org = await enter_org(ctx, actor, payload.org_id, "member.remove", write=True)
    if not leaving:
        actor.require("members", "remove")
    membership = await _owned_membership(ctx, org, payload.person_id)
    if not leaving and membership.role == Role.ORG_OWNER and actor.role not in (Role.ORG_OWNER, Role.PLATFORM_OWNER):
        raise Forbidden("only an owner can remove an owner")
    await _keep_an_owner(ctx, org, membership, "leave" if leaving else "be removed")
    if not leaving:
        await require_second_factor(ctx, replica.keys, actor.org_id, actor.person_id, payload.otp)
    await repo.delete_membership(ctx.session, org.id, payload.person_id)
    await access_repo.release_quota(ctx.session, org.id, "users", 1)
    revoked = await access_repo.revoke_keys(ctx.session, org.id, person_id=payload.person_id)
    replica.invalidate_keys(key_ids=revoked, org_id=org.id, person_id=payload.person_id)
    async with repo.platform_access(ctx.session):
        person = await repo.get_person(ctx.session, payload.person_id)
        if person is not None and person.current_org_id == org.id:
            remaining = await repo.org_ids_of(ctx.session, payload.person_id)
            await repo.update_person(ctx.session, payload.person_id, {"current_org_id": remaining[0] if remaining else None})
    await record(ctx, EventType.USER_REMOVED_FROM_ORG, org_id=org.id, target_id=payload.person_id,
                 target_type=thing_type_of(membership.role),
                 metadata={"connection": "member_of", "role": membership.role, "left": leaving, "revokedKeys": revoked})
    return MemberRemoved(org_id=org.id, person_id=payload.person_id, revoked_keys=revoked)



async def add_owner(ctx: WorkContext, creds: Credentials, org: Any, owner: PersonIn) -> Joined:
    """A platform owner creating an org names its first owner (found by email, or registered)."""
    person, _ = await ensure_person(ctx, owner, Role.ORG_OWNER, org.id)
    membership = await join(ctx, org, person.id, Role.ORG_OWNER.value, [], invited_by=ctx.envelope.actor_id)
    return await _joined(ctx, creds, org, person, membership)
