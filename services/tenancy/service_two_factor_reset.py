"""An operator resets another person's two-factor: the way back after a lost device and lost backup codes,
or after a pepper change made every sealed secret unreadable.

Resetting deletes the person's secret and backup codes; their keys keep working
and they enroll again. It is a takeover aid if misused, so it is narrow:

- never one's own (that is `tenancy.two_factor.disable`, which needs a code);
- needs `two_factor:reset` in the target org (owners have it; an org may grant
  it to a role) and, where the actor's org enables two-factor, the actor's own
  current code, as every sensitive operation does;
- two-factor belongs to the person across orgs, so an org's owner may reset only
  a member who belongs to no other org (else one org could weaken a person's
  protection in another) and not a platform owner; only an owner resets an owner.
  A platform owner may reset anyone, naming the person's org as `org_id` (a
  cross-org access, logged in that org like every other).

The reset is logged in the target org as `two_factor_disabled` with
`metadata.reset = true` and who did it; the person's cached keys are dropped in
every org they belong to, so no replica keeps serving a verification from before.
"""

from typing import Any
from uuid import UUID

from services.tenancy import repository as repo, repository_security as security_repo
from services.tenancy.service import (
    Actor,
    enter_org,
    record,
    resolve_actor,
    thing_type_of,
)
from services.tenancy.service_two_factor import require_second_factor
from services.tenancy.state import TenancyState
from shared.contracts.tenancy import PersonNotFound, TwoFactorReset, TwoFactorResetDone, TwoFactorState
from shared.kernel.errors import Forbidden
from shared.kernel.ontology import EventType, Role
from shared.runtime.context import WorkContext


def _check_org_operator(actor: Actor, org: Any, membership: Any, person: Any, org_ids: list[UUID]) -> None:
    """What an org's own operator (not a platform owner) may not reset."""
    if person.role == Role.PLATFORM_OWNER:
        raise Forbidden("a platform owner's two-factor is reset by another platform owner")
    if membership.role == Role.ORG_OWNER and actor.role != Role.ORG_OWNER:
        raise Forbidden("only an owner can reset an owner's two-factor")
    if set(org_ids) - {org.id}:
        raise Forbidden(
            "this person belongs to other organizations too, where their two-factor protects them as well: "
            "ask a platform owner to reset it", {"person_id": str(membership.person_id)},
        )


async def reset(ctx: WorkContext, replica: TenancyState, payload: TwoFactorReset) -> TwoFactorResetDone:
    actor = await resolve_actor(ctx)
    if payload.person_id == actor.person_id:
        raise Forbidden("one's own two-factor is turned off with a code (tenancy.two_factor.disable), not reset")
    org = await enter_org(ctx, actor, payload.org_id, "two_factor.reset", write=True,
                          check_status=not actor.is_platform_owner)
    actor.require("two_factor", "reset")
    membership = await repo.get_membership(ctx.session, org.id, payload.person_id)
    async with repo.platform_access(ctx.session):
        org_ids = await repo.org_ids_of(ctx.session, payload.person_id)
        person = await repo.get_person(ctx.session, payload.person_id) if membership is not None else None
    if membership is None or person is None:
        details = {"org_ids": [str(o) for o in org_ids]} if actor.is_platform_owner and org_ids else {}
        hint = ": name one of their organizations as org_id" if details else ""
        raise PersonNotFound(f"{payload.person_id} is not a member of {org.slug}{hint}", details)
    if not actor.is_platform_owner:
        _check_org_operator(actor, org, membership, person, org_ids)
    await require_second_factor(ctx, replica.keys, actor.org_id, actor.person_id, payload.otp)
    state = await security_repo.two_factor_of(ctx.session, payload.person_id)
    if state is None:
        raise TwoFactorState("this person has no two-factor authentication to reset")
    await security_repo.disable(ctx.session, payload.person_id)
    for org_id in org_ids:
        replica.invalidate_keys(org_id=org_id, person_id=payload.person_id)
    was_enabled = state.enabled_at is not None
    await record(ctx, EventType.TWO_FACTOR_DISABLED, org_id=org.id, target_id=payload.person_id,
                 target_type=thing_type_of(membership.role),
                 metadata={"method": state.method, "reset": True, "resetBy": str(actor.person_id),
                           "resetByRole": actor.role, "wasEnabled": was_enabled})
    return TwoFactorResetDone(org_id=org.id, person_id=payload.person_id, was_enabled=was_enabled)
