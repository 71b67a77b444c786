"""The tenancy service's subscribers: each one hands its payload to the service layer.

The replica's own state (key cache, invalidation broadcast, mail drop) is made
when the runtime starts and lives on `runtime.state` (`services.tenancy.state`).
"""

from typing import Any

from services.tenancy import (
    app_webhooks,
    keys as sealed_secrets,
    notify_email,
    service,
    service_access,
    service_identity,
    service_keys,
    service_members,
    service_packs,
    service_quota,
    service_two_factor,
    service_two_factor_reset,
    service_verification,
)
from services.tenancy.service_keys import Credentials, load_pepper
from services.tenancy.settings import TenancySettings
from services.tenancy.state import TenancyState, state_of
from shared import __version__
from shared.contracts.keys import KeysRotated, keys_rotate_spec
from shared.contracts.tenancy import (
    ACT_IN_ORG,
    EMAIL_VERIFICATION_REQUEST,
    EMAIL_VERIFY,
    IDENTITY_SNAPSHOT,
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
    QUOTA_CONSUME,
    QUOTA_RELEASE,
    QUOTA_RESERVE,
    QUOTA_SET,
    QUOTA_SETTLE,
    QUOTA_USAGE,
    RATE_HIT,
    RATE_LIST,
    RATE_SET,
    RBAC_CHECK,
    ROLE_CREATE,
    ROLE_LIST,
    SIGNUP,
    TWO_FACTOR_CONFIRM,
    TWO_FACTOR_DISABLE,
    TWO_FACTOR_ENROLL,
    TWO_FACTOR_RESET,
    VERIFY_KEY,
    ActInOrg,
    Check,
    CheckResult,
    EmailVerified,
    EmailVerify,
    IdentityQuery,
    IdentitySnapshot,
    InviteAccept,
    InviteCreate,
    InviteIssued,
    Joined,
    KeyCreate,
    KeyIssued,
    KeyList,
    KeyRevoke,
    Keys,
    MemberRemove,
    MemberRemoved,
    Members,
    Organization,
    OrganizationCreate,
    OrganizationCreated,
    OrganizationList,
    Organizations,
    OrganizationUpdate,
    OrgTarget,
    Person,
    PolicyAdd,
    PolicyRemove,
    PolicyRemoved,
    ProfileUpdate,
    PublicOrg,
    PublicOrgRef,
    Quota,
    QuotaChange,
    QuotaReservation,
    QuotaReserve,
    Quotas,
    QuotaSet,
    QuotaSettle,
    RateAllowed,
    RateHit,
    RateRules,
    RateRuleSet,
    RoleChange,
    RoleCreate,
    Roles,
    Signup,
    TwoFactorCode,
    TwoFactorDisabled,
    TwoFactorEnabled,
    TwoFactorEnrollment,
    TwoFactorReset,
    TwoFactorResetDone,
    VerificationSent,
    VerifiedKey,
    VerifyKey,
)
from shared.contracts.tenancy.packs import (
    PACK_INSTALL,
    PACK_LIST,
    PACK_UNINSTALL,
    PackInstall,
    PackInstalled,
    Packs,
    PackUninstall,
    PackUninstalled,
)
from shared.kernel.envelope import Empty, Encoded
from shared.kernel.errors import OneError
from shared.runtime import keyring
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime

router = ServiceRouter("tenancy")


def _keys(ctx: WorkContext) -> Credentials:
    return state_of(ctx.runtime).keys


async def _start(runtime: ServiceRuntime) -> None:
    keys = Credentials(load_pepper(runtime.settings), runtime.settings.key_cache_ttl)
    state = TenancyState(keys, runtime.broker.connection)
    await state.listen()
    runtime.state = state
    await sealed_secrets.reseal_legacy(runtime, keys.pepper)  # two-factor secrets sealed before envelope encryption


async def _stop(runtime: ServiceRuntime) -> None:
    state, runtime.state = runtime.state, None
    if isinstance(state, TenancyState):
        await state.close()


# Eager: the edge verifies every request, and a cached key needs no task of its own.
@router.handler(VERIFY_KEY, transactional=False, eager=True)
async def verify_key(ctx: WorkContext, payload: VerifyKey) -> Encoded[VerifiedKey]:
    return await service_keys.verify_key(_keys(ctx), ctx.runtime.db, payload.key)


@router.handler(ACT_IN_ORG)
async def act_in_org(ctx: WorkContext, payload: ActInOrg) -> VerifiedKey:
    return await service_keys.act_in_org(ctx, _keys(ctx), payload.key, payload.org_id)


@router.handler(ORG_CREATE)
async def create_organization(ctx: WorkContext, payload: OrganizationCreate) -> OrganizationCreated:
    org = await service.create_organization(ctx, payload)
    if payload.owner is None:
        return OrganizationCreated(organization=await service.load_org(ctx, org))
    joined = await service_members.add_owner(ctx, _keys(ctx), org, payload.owner)
    return OrganizationCreated(organization=joined.organization, owner=joined.person, owner_key=joined.api_key)


@router.handler(ORG_GET)
async def get_organization(ctx: WorkContext, payload: OrgTarget) -> Organization:
    return await service.get_organization(ctx, payload.org_id)


@router.handler(ORG_UPDATE)
async def update_organization(ctx: WorkContext, payload: OrganizationUpdate) -> Organization:
    return await service.update_organization(ctx, state_of(ctx.runtime), payload)


@router.handler(ORG_RESOLVE_PUBLIC)
async def resolve_public_organization(ctx: WorkContext, payload: PublicOrgRef) -> PublicOrg:
    return await service.resolve_public(ctx, payload.ref)


@router.handler(ORG_LIST)
async def list_organizations(ctx: WorkContext, payload: OrganizationList) -> Organizations:
    return Organizations(organizations=await service.list_organizations(ctx, payload.limit, payload.offset))


@router.handler(SIGNUP)
async def signup(ctx: WorkContext, payload: Signup) -> Joined:
    return await service_members.signup(ctx, _keys(ctx), payload, ctx.runtime.settings.trial_days)


@router.handler(PERSON_ME)
async def me(ctx: WorkContext, _: Empty) -> Person:
    return await service.me(ctx)


@router.handler(PERSON_UPDATE)
async def update_profile(ctx: WorkContext, payload: ProfileUpdate) -> Person:
    return await service.update_profile(ctx, payload)


@router.handler(MEMBER_INVITE)
async def invite_member(ctx: WorkContext, payload: InviteCreate) -> InviteIssued:
    invite, token = await service_members.invite(ctx, state_of(ctx.runtime), payload, ctx.runtime.settings.invite_ttl)
    return InviteIssued(invite=invite, delivery=invite.delivery, token=token)


@router.handler(MEMBER_ACCEPT)
async def accept_invite(ctx: WorkContext, payload: InviteAccept) -> Joined:
    return await service_members.accept(ctx, _keys(ctx), payload)


@router.handler(MEMBER_LIST)
async def list_members(ctx: WorkContext, payload: OrgTarget) -> Members:
    members, invites = await service_members.list_members(ctx, payload.org_id)
    return Members(members=members, pending_invites=invites)


@router.handler(MEMBER_ROLE)
async def change_member_role(ctx: WorkContext, payload: RoleChange) -> Any:
    return await service_members.change_role(ctx, state_of(ctx.runtime), payload)


@router.handler(MEMBER_REMOVE)
async def remove_member(ctx: WorkContext, payload: MemberRemove) -> MemberRemoved:
    return await service_members.remove(ctx, state_of(ctx.runtime), payload)


@router.handler(KEY_CREATE)
async def create_key(ctx: WorkContext, payload: KeyCreate) -> KeyIssued:
    key, info = await service_keys.create_key(ctx, _keys(ctx), payload)
    return KeyIssued(key=key, info=info)


@router.handler(KEY_LIST)
async def list_keys(ctx: WorkContext, payload: KeyList) -> Keys:
    return Keys(keys=await service_keys.list_keys(ctx, payload.everyone))


@router.handler(KEY_REVOKE)
async def revoke_key(ctx: WorkContext, payload: KeyRevoke) -> Any:
    return await service_keys.revoke_key(ctx, state_of(ctx.runtime), payload.key_id)


@router.handler(ROLE_LIST)
async def list_roles(ctx: WorkContext, _: Empty) -> Roles:
    return Roles(roles=await service_access.list_roles(ctx))


@router.handler(ROLE_CREATE)
async def create_role(ctx: WorkContext, payload: RoleCreate) -> Any:
    return await service_access.create_role(ctx, _keys(ctx), payload)


@router.handler(POLICY_ADD)
async def add_policy(ctx: WorkContext, payload: PolicyAdd) -> Any:
    return await service_access.add_policy(ctx, state_of(ctx.runtime), payload)


@router.handler(POLICY_REMOVE)
async def remove_policy(ctx: WorkContext, payload: PolicyRemove) -> PolicyRemoved:
    await service_access.remove_policy(ctx, state_of(ctx.runtime), payload.policy_id, payload.otp)
    return PolicyRemoved(policy_id=payload.policy_id)


@router.handler(RBAC_CHECK)
async def check(ctx: WorkContext, payload: Check) -> CheckResult:
    return await service_access.check(ctx, payload)


@router.handler(QUOTA_USAGE)
async def quota_usage(ctx: WorkContext, payload: OrgTarget) -> Quotas:
    return Quotas(quotas=await service_access.usage(ctx, payload.org_id))


@router.handler(QUOTA_CONSUME, transactional=False)
async def consume_quota(ctx: WorkContext, payload: QuotaChange) -> Quota:
    """Own transaction: a refusal still commits its `inference_quota_exceeded` event, then answers the error."""
    async with ctx.transaction() as tx:
        outcome = await service_access.consume(tx, payload)
    if isinstance(outcome, OneError):
        raise outcome
    return outcome


@router.handler(QUOTA_RELEASE)
async def release_quota(ctx: WorkContext, payload: QuotaChange) -> Quota:
    return await service_access.release(ctx, payload)


@router.handler(IDENTITY_SNAPSHOT)
async def identity_snapshot(ctx: WorkContext, payload: IdentityQuery) -> IdentitySnapshot:
    return await service_identity.snapshot(ctx, payload)


@router.handler(QUOTA_RESERVE)
async def reserve_quota(ctx: WorkContext, payload: QuotaReserve) -> QuotaReservation:
    return await service_quota.reserve(ctx, payload)


@router.handler(QUOTA_SETTLE)
async def settle_quota(ctx: WorkContext, payload: QuotaSettle) -> Quota:
    return await service_quota.settle(ctx, payload)


@router.handler(QUOTA_SET)
async def set_quota_limit(ctx: WorkContext, payload: QuotaSet) -> Quota:
    return await service_access.set_limit(ctx, payload)


@router.handler(RATE_HIT)
async def hit_rate_limit(ctx: WorkContext, payload: RateHit) -> RateAllowed:
    remaining, reset_after = await service_access.hit(ctx, payload)
    return RateAllowed(remaining=remaining, reset_after=reset_after)


@router.handler(RATE_SET)
async def set_rate_limit(ctx: WorkContext, payload: RateRuleSet) -> Any:
    return await service_access.set_rate_rule(ctx, state_of(ctx.runtime), payload)


@router.handler(RATE_LIST)
async def list_rate_limits(ctx: WorkContext, _: Empty) -> RateRules:
    return RateRules(rules=await service_access.list_rate_rules(ctx))



@router.handler(PACK_INSTALL, transactional=False)
async def install_pack(ctx: WorkContext, payload: PackInstall) -> PackInstalled:
    """Not in one transaction: the graph and the agents service make their parts first (service_packs)."""
    return await service_packs.install_pack(ctx, state_of(ctx.runtime), payload)


@router.handler(PACK_UNINSTALL, transactional=False)
async def uninstall_pack(ctx: WorkContext, payload: PackUninstall) -> PackUninstalled:
    return await service_packs.uninstall_pack(ctx, state_of(ctx.runtime), payload)


@router.handler(PACK_LIST)
async def list_packs(ctx: WorkContext, _: Empty) -> Packs:
    return await service_packs.list_packs(ctx)

@router.handler(EMAIL_VERIFICATION_REQUEST)
async def request_email_verification(ctx: WorkContext, _: Empty) -> VerificationSent:
    settings = ctx.runtime.settings
    return await service_verification.request_verification(
        ctx, state_of(ctx.runtime),
        ttl_seconds=settings.email_verification_ttl, per_hour=settings.email_verification_per_hour,
    )


@router.handler(EMAIL_VERIFY)
async def verify_email(ctx: WorkContext, payload: EmailVerify) -> EmailVerified:
    return await service_verification.confirm_email(ctx, state_of(ctx.runtime), payload.token)


@router.handler(TWO_FACTOR_ENROLL)
async def enroll_two_factor(ctx: WorkContext, _: Empty) -> TwoFactorEnrollment:
    return await service_two_factor.enroll(ctx, _keys(ctx), ctx.runtime.settings.totp_issuer)


@router.handler(TWO_FACTOR_CONFIRM)
async def confirm_two_factor(ctx: WorkContext, payload: TwoFactorCode) -> TwoFactorEnabled:
    return await service_two_factor.confirm(ctx, _keys(ctx), payload.code)


@router.handler(TWO_FACTOR_DISABLE)
async def disable_two_factor(ctx: WorkContext, payload: TwoFactorCode) -> TwoFactorDisabled:
    return await service_two_factor.disable(ctx, _keys(ctx), payload.code)


@router.handler(TWO_FACTOR_RESET)
async def reset_two_factor(ctx: WorkContext, payload: TwoFactorReset) -> TwoFactorResetDone:
    return await service_two_factor_reset.reset(ctx, state_of(ctx.runtime), payload)


router.include(app_webhooks.router)  # signed inbound webhooks: sources and the receiver
router.include(keyring.rotation_router("tenancy", keys_rotate_spec("tenancy"), KeysRotated))

definition = ServiceDefinition(
    name="tenancy", version=__version__, router=router, settings=TenancySettings, on_start=[_start, notify_email.start],
    on_stop=[notify_email.stop, _stop, keyring.close],
)
