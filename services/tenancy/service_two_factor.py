"""Two-factor authentication (TOTP, RFC 6238): enroll, confirm, disable, and the check sensitive operations make.

Two-factor belongs to a person: every org they are in sees the same state. An
org whose settings enable it makes its members' sensitive operations (issuing
API keys, roles and policies, member roles and removals, another person's
two-factor reset (`service_two_factor_reset.py`), the org's settings,
plan and status) need a current code in the payload's `otp`
(`require_second_factor`). The rule is the actor's own org's (the org of the
key): a platform owner is bound by the platform org's setting, also when acting
on another org, and not by that org's.

A code is good once: its TOTP step is recorded and only a later step passes
next; a backup code is marked used. Both happen in the operation's transaction,
so an operation that fails afterwards gives the code back.

This module does not import `service.py` (which calls it); it checks membership
and emits its events itself.
"""

from typing import TYPE_CHECKING, Any
from uuid import UUID

from services.tenancy import keys, repository as repo, repository_security as security_repo, totp
from shared.contracts.tenancy import (
    OrgSettings,
    TwoFactorCodeInvalid,
    TwoFactorDisabled,
    TwoFactorEnabled,
    TwoFactorEnrollment,
    TwoFactorRequired,
    TwoFactorState,
)
from shared.kernel.errors import Forbidden
from shared.kernel.ontology import EventType, Role
from shared.kernel.rbac import scope_allows
from shared.runtime.context import WorkContext

if TYPE_CHECKING:
    from services.tenancy.service_keys import Credentials

SCOPE_RESOURCE = "two_factor"
"""A key narrowed by scopes manages two-factor only with `two_factor:manage` (an unscoped key may)."""


async def _member(ctx: WorkContext) -> Any:
    """The actor's person and membership row; a key with scopes must include two_factor:manage."""
    if not scope_allows(ctx.envelope.scopes, SCOPE_RESOURCE, "manage"):
        raise Forbidden("the API key's scopes do not include two_factor:manage",
                        {"resource": SCOPE_RESOURCE, "action": "manage"})
    row = await repo.actor_in_org(ctx.session, ctx.auth.org_id, ctx.auth.actor_id)
    if row is None:
        raise Forbidden("the actor is not a member of this organization")
    return row


def _target_type(member: Any) -> str:
    return "audience_member" if member.person_role == Role.CUSTOMER else "creator"


def _backup_hash(creds: "Credentials", code: str) -> bytes:
    return creds.hash(f"two-factor-backup:{totp.normalise_backup_code(code)}")


async def _secret(ctx: WorkContext, creds: "Credentials", state: Any) -> bytes:
    try:
        return await keys.open_totp(ctx.runtime, creds.pepper, state.person_id, bytes(state.secret_sealed))
    except (ValueError, LookupError):  # LookupError: its data key's KEK is gone from the key file
        raise TwoFactorState(
            "the stored two-factor secret cannot be opened (was the pepper or the key file changed?): "
            "ask an owner of the organization or a platform owner to reset it (tenancy.two_factor.reset)"
        ) from None


async def _accept(ctx: WorkContext, creds: "Credentials", state: Any, code: str) -> bool:
    """Take `code` (a TOTP code of a step not used yet, or an unused backup code); True if it was a backup code."""
    if totp.is_totp_code(code):
        secret, clock = await _secret(ctx, creds, state), float(state.db_now)
        step = totp.matching_step(secret, code, clock, state.last_step)
        if step is not None and await security_repo.take_step(ctx.session, state.person_id, step):
            return False
        if totp.matching_step(secret, code, clock, None) is not None:
            raise TwoFactorCodeInvalid("this code was used already: wait for the next one")
        raise TwoFactorCodeInvalid("the code is wrong or too old (check the device's clock)")
    if await security_repo.use_backup_code(ctx.session, state.person_id, _backup_hash(creds, code)):
        return True
    raise TwoFactorCodeInvalid("not an unused backup code of this person")


async def require_second_factor(
    ctx: WorkContext, creds: "Credentials", org_id: UUID, person_id: UUID, otp: str | None
) -> None:
    """Nothing when `org_id` does not enable two-factor; else the person's two-factor must be on and `otp` good.

    Runs under platform access: a platform owner's transaction may have moved to
    another org already, and this looks at the actor's own org and own person only.
    """
    async with repo.platform_access(ctx.session):
        org = await repo.get_org(ctx.session, org_id)
        if org is None or not OrgSettings.model_validate(org.settings).enable_two_factor:
            return
        state = await security_repo.two_factor_of(ctx.session, person_id)
        if state is None or state.enabled_at is None:
            raise TwoFactorRequired(
                f"organization {org.slug} requires two-factor authentication for this: enable it first "
                "(tenancy.two_factor.enroll, then tenancy.two_factor.confirm)", {"org_id": str(org_id)},
            )
        if otp is None:
            raise TwoFactorRequired(
                f"organization {org.slug} requires a current two-factor code for this: pass it as `otp`",
                {"org_id": str(org_id)},
            )
        await _accept(ctx, creds, state, otp)


async def enroll(ctx: WorkContext, creds: "Credentials", issuer: str) -> TwoFactorEnrollment:
    """A new secret, pending until confirmed with a code (a pending one is replaced); shown once."""
    member = await _member(ctx)
    person = await repo.get_person(ctx.session, ctx.auth.actor_id)
    secret = totp.new_secret()
    sealed = await keys.seal_totp(ctx.runtime, person.id, secret)  # envelope-sealed (`keys.py`)
    if not await security_repo.start_enrollment(ctx.session, person.id, sealed):
        raise TwoFactorState("two-factor authentication is already enabled: disable it before enrolling a new secret")
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=person.id, target_type=_target_type(member),
                   metadata={"twoFactor": "enrollment_started", "method": "totp"})
    return TwoFactorEnrollment(secret=totp.secret_text(secret), otpauth_uri=totp.otpauth_uri(secret, person.email, issuer))


async def confirm(ctx: WorkContext, creds: "Credentials", code: str) -> TwoFactorEnabled:
    """A code from the pending secret turns two-factor on and yields fresh backup codes, shown once."""
    member = await _member(ctx)
    person_id = ctx.auth.actor_id
    state = await security_repo.two_factor_of(ctx.session, person_id)
    if state is None:
        raise TwoFactorState("nothing to confirm: enroll first (tenancy.two_factor.enroll)")
    if state.enabled_at is not None:
        raise TwoFactorState("two-factor authentication is already enabled")
    if not totp.is_totp_code(code):
        raise TwoFactorCodeInvalid("confirm with a 6-digit code from the authenticator app")
    step = totp.matching_step(await _secret(ctx, creds, state), code, float(state.db_now), None)
    if step is None:
        raise TwoFactorCodeInvalid("the code is wrong or too old (check the device's clock)")
    enabled_at = await security_repo.enable(ctx.session, person_id, step)
    codes = totp.new_backup_codes()
    await security_repo.replace_backup_codes(ctx.session, person_id, [_backup_hash(creds, c) for c in codes])
    await ctx.emit(EventType.TWO_FACTOR_ENABLED, target_id=person_id, target_type=_target_type(member),
                   metadata={"method": "totp", "backupCodesGenerated": len(codes)})
    return TwoFactorEnabled(enabled_at=enabled_at, backup_codes=codes)


async def disable(ctx: WorkContext, creds: "Credentials", code: str) -> TwoFactorDisabled:
    """Turn two-factor off with a current code or a backup code; the secret and backup codes are deleted."""
    member = await _member(ctx)
    person_id = ctx.auth.actor_id
    state = await security_repo.two_factor_of(ctx.session, person_id)
    if state is None or state.enabled_at is None:
        raise TwoFactorState("two-factor authentication is not enabled")
    used_backup_code = await _accept(ctx, creds, state, code)
    await security_repo.disable(ctx.session, person_id)
    await ctx.emit(EventType.TWO_FACTOR_DISABLED, target_id=person_id, target_type=_target_type(member),
                   metadata={"method": "totp", "usedBackupCode": used_backup_code})
    return TwoFactorDisabled(person_id=person_id, used_backup_code=used_backup_code)
