"""The tenancy service's subscribers: each one hands its payload to the service layer."""

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from services.tenancy import (
    service,
    service_access,
    service_keys,
    service_members,
    service_two_factor,
    service_two_factor_reset,
    service_verification,
)
from services.tenancy.models import Organization, Person, Quota
from services.tenancy.schemas import (
    EMAIL_VERIFICATION_REQUEST,
    EMAIL_VERIFY,
    KEY_CREATE,
    KEY_LIST,
    KEY_REVOKE,
    KEY_VERIFY,
    KEYS_INVALIDATE_SUBJECT,
    MAIL_DROP_SUBJECT,
    MEMBER_ACCEPT,
    MEMBER_INVITE,
    MEMBER_LIST,
    MEMBER_REMOVE,
    MEMBER_ROLE,
    ORG_CREATE,
    ORG_GET,
    ORG_LIST,
    ORG_UPDATE,
    PERSON_ME,
    PERSON_UPDATE,
    POLICY_ADD,
    POLICY_REMOVE,
    QUOTA_CONSUME,
    QUOTA_RELEASE,
    QUOTA_SET,
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
    Check,
    CheckResult,
    EmailVerified,
    EmailVerify,
    InviteAccept,
    InviteCreate,
    InviteIssued,
    Joined,
    KeyCreate,
    KeyIssued,
    KeyList,
    KeyRevoke,
    Keys,
    MailDrop,
    MemberRemove,
    MemberRemoved,
    Members,
    OrganizationCreate,
    OrganizationCreated,
    OrganizationList,
    Organizations,
    OrganizationUpdate,
    OrgTarget,
    PolicyAdd,
    PolicyRemove,
    PolicyRemoved,
    ProfileUpdate,
    QuotaChange,
    Quotas,
    QuotaSet,
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
)
from services.tenancy.service_keys import Credentials, load_pepper
from shared import __version__
from shared.kernel.auth import VerifiedKey, VerifyKey
from shared.kernel.envelope import Empty, Encoded, MessageSpec
from shared.kernel.errors import OneError, Unavailable
from shared.runtime.handlers import Handler, RequestContext, ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime

log = logging.getLogger(__name__)


class TenancyState:
    """What one running tenancy holds between requests: the pepper, the key cache, the mail drop."""

    def __init__(self) -> None:
        self.creds: Credentials | None = None
        self.mail: service_verification.SendMail | None = None
        self.subscription: Subscription | None = None
        self.pending: set[asyncio.Task[None]] = set()

    @property
    def keys(self) -> Credentials:
        assert self.creds is not None, "tenancy used before it started"
        return self.creds


_states: dict[ServiceRuntime, TenancyState] = {}
_handlers: list[tuple[MessageSpec[Any, Any], Handler, dict[str, bool]]] = []


def state_of(runtime: ServiceRuntime) -> TenancyState:
    """One state per running tenancy, so two replicas can share a process (a test does) yet keep their own caches."""
    state = _states.get(runtime)
    assert state is not None, "tenancy used before it started"
    return state


def _keys(ctx: RequestContext) -> Credentials:
    return state_of(ctx.runtime).keys


def handles(spec: MessageSpec[Any, Any], **options: bool) -> Callable[[Handler], Handler]:
    """Note a handler; `build_definition` gives each definition a router of its own with all of them."""
    def note(fn: Handler) -> Handler:
        _handlers.append((spec, fn, options))
        return fn

    return note


async def _start(runtime: ServiceRuntime) -> None:
    nc = runtime.broker.connection
    state = _states[runtime] = TenancyState()

    def broadcast(message: dict[str, Any]) -> None:
        task = asyncio.create_task(nc.publish(KEYS_INVALIDATE_SUBJECT, json.dumps(message).encode()))
        state.pending.add(task)
        task.add_done_callback(state.pending.discard)

    async def on_invalidate(msg: Msg) -> None:
        try:
            state.keys.apply_invalidation(json.loads(msg.data))
        except (ValueError, TypeError) as error:
            log.warning("tenancy: ignored a malformed key invalidation: %r", error)

    async def mail(message: MailDrop) -> None:
        try:
            await nc.publish(MAIL_DROP_SUBJECT, message.model_dump_json().encode())
        except NatsError as error:
            raise Unavailable("could not hand the email to the mail drop: ask again") from error

    state.creds = Credentials(load_pepper(runtime.settings), runtime.settings.key_cache_ttl, broadcast)
    state.mail = mail
    state.subscription = await nc.subscribe(KEYS_INVALIDATE_SUBJECT, cb=on_invalidate)


async def _stop(runtime: ServiceRuntime) -> None:
    state = _states.pop(runtime, None)
    if state is None:
        return
    if state.subscription is not None:
        await state.subscription.unsubscribe()
        state.subscription = None
    if state.pending:
        await asyncio.gather(*state.pending, return_exceptions=True)


@handles(KEY_VERIFY, transactional=False, eager=True)  # the edge verifies every request; a cached key needs no task
async def verify_key(ctx: RequestContext, payload: VerifyKey) -> Encoded[VerifiedKey]:
    return await service_keys.verify_key(_keys(ctx), ctx.runtime.db, payload.key)


@handles(ORG_CREATE)
async def create_organization(ctx: RequestContext, payload: OrganizationCreate) -> OrganizationCreated:
    org = await service.create_organization(ctx, payload)
    if payload.owner is None:
        return OrganizationCreated(organization=await service.load_org(ctx, org))
    joined = await service_members.add_owner(ctx, _keys(ctx), org, payload.owner)
    return OrganizationCreated(organization=joined.organization, owner=joined.person, owner_key=joined.api_key)


@handles(ORG_GET)
async def get_organization(ctx: RequestContext, payload: OrgTarget) -> Organization:
    return await service.get_organization(ctx, payload.org_id)


@handles(ORG_UPDATE)
async def update_organization(ctx: RequestContext, payload: OrganizationUpdate) -> Organization:
    return await service.update_organization(ctx, _keys(ctx), payload)


@handles(ORG_LIST)
async def list_organizations(ctx: RequestContext, payload: OrganizationList) -> Organizations:
    return Organizations(organizations=await service.list_organizations(ctx, payload.limit, payload.offset))


@handles(SIGNUP)
async def signup(ctx: RequestContext, payload: Signup) -> Joined:
    return await service_members.signup(ctx, _keys(ctx), payload, ctx.runtime.settings.trial_days)


@handles(PERSON_ME)
async def me(ctx: RequestContext, _: Empty) -> Person:
    return await service.me(ctx)


@handles(PERSON_UPDATE)
async def update_profile(ctx: RequestContext, payload: ProfileUpdate) -> Person:
    return await service.update_profile(ctx, payload)


@handles(MEMBER_INVITE)
async def invite_member(ctx: RequestContext, payload: InviteCreate) -> InviteIssued:
    state = state_of(ctx.runtime)
    assert state.mail is not None, "tenancy used before it started"
    invite, token = await service_members.invite(ctx, state.keys, state.mail, payload, ctx.runtime.settings.invite_ttl)
    return InviteIssued(invite=invite, delivery=invite.delivery, token=token)


@handles(MEMBER_ACCEPT)
async def accept_invite(ctx: RequestContext, payload: InviteAccept) -> Joined:
    return await service_members.accept(ctx, _keys(ctx), payload)


@handles(MEMBER_LIST)
async def list_members(ctx: RequestContext, payload: OrgTarget) -> Members:
    members, invites = await service_members.list_members(ctx, payload.org_id)
    return Members(members=members, pending_invites=invites)


@handles(MEMBER_ROLE)
async def change_member_role(ctx: RequestContext, payload: RoleChange) -> Any:
    return await service_members.change_role(ctx, _keys(ctx), payload)


@handles(MEMBER_REMOVE)
async def remove_member(ctx: RequestContext, payload: MemberRemove) -> MemberRemoved:
    return await service_members.remove(ctx, _keys(ctx), payload)


@handles(KEY_CREATE)
async def create_key(ctx: RequestContext, payload: KeyCreate) -> KeyIssued:
    key, info = await service_keys.create_key(ctx, _keys(ctx), payload)
    return KeyIssued(key=key, info=info)


@handles(KEY_LIST)
async def list_keys(ctx: RequestContext, payload: KeyList) -> Keys:
    return Keys(keys=await service_keys.list_keys(ctx, payload.everyone))


@handles(KEY_REVOKE)
async def revoke_key(ctx: RequestContext, payload: KeyRevoke) -> Any:
    return await service_keys.revoke_key(ctx, _keys(ctx), payload.key_id)


@handles(ROLE_LIST)
async def list_roles(ctx: RequestContext, _: Empty) -> Roles:
    return Roles(roles=await service_access.list_roles(ctx))


@handles(ROLE_CREATE)
async def create_role(ctx: RequestContext, payload: RoleCreate) -> Any:
    return await service_access.create_role(ctx, _keys(ctx), payload)


@handles(POLICY_ADD)
async def add_policy(ctx: RequestContext, payload: PolicyAdd) -> Any:
    return await service_access.add_policy(ctx, _keys(ctx), payload)


@handles(POLICY_REMOVE)
async def remove_policy(ctx: RequestContext, payload: PolicyRemove) -> PolicyRemoved:
    await service_access.remove_policy(ctx, _keys(ctx), payload.policy_id, payload.otp)
    return PolicyRemoved(policy_id=payload.policy_id)


@handles(RBAC_CHECK)
async def check(ctx: RequestContext, payload: Check) -> CheckResult:
    return await service_access.check(ctx, payload)


@handles(QUOTA_USAGE)
async def quota_usage(ctx: RequestContext, payload: OrgTarget) -> Quotas:
    return Quotas(quotas=await service_access.usage(ctx, payload.org_id))


@handles(QUOTA_CONSUME, transactional=False)
async def consume_quota(ctx: RequestContext, payload: QuotaChange) -> Quota:
    """Own transaction: a refusal still commits its `inference_quota_exceeded` event, then answers the error."""
    async with ctx.runtime.db.transaction(ctx.auth.org_id) as session:
        inner = RequestContext(ctx.envelope, session, ctx.runtime)
        outcome = await service_access.consume(inner, payload)
    if inner.staged_events:
        ctx.runtime.relay.wake()
    if isinstance(outcome, OneError):
        raise outcome
    return outcome


@handles(QUOTA_RELEASE)
async def release_quota(ctx: RequestContext, payload: QuotaChange) -> Quota:
    return await service_access.release(ctx, payload)


@handles(QUOTA_SET)
async def set_quota_limit(ctx: RequestContext, payload: QuotaSet) -> Quota:
    return await service_access.set_limit(ctx, payload)


@handles(RATE_HIT)
async def hit_rate_limit(ctx: RequestContext, payload: RateHit) -> RateAllowed:
    remaining, reset_after = await service_access.hit(ctx, payload)
    return RateAllowed(remaining=remaining, reset_after=reset_after)


@handles(RATE_SET)
async def set_rate_limit(ctx: RequestContext, payload: RateRuleSet) -> Any:
    return await service_access.set_rate_rule(ctx, payload)


@handles(RATE_LIST)
async def list_rate_limits(ctx: RequestContext, _: Empty) -> RateRules:
    return RateRules(rules=await service_access.list_rate_rules(ctx))


@handles(EMAIL_VERIFICATION_REQUEST)
async def request_email_verification(ctx: RequestContext, _: Empty) -> VerificationSent:
    settings, state = ctx.runtime.settings, state_of(ctx.runtime)
    assert state.mail is not None, "tenancy used before it started"
    return await service_verification.request_verification(
        ctx, state.keys, state.mail,
        ttl_seconds=settings.email_verification_ttl, per_hour=settings.email_verification_per_hour,
    )


@handles(EMAIL_VERIFY)
async def verify_email(ctx: RequestContext, payload: EmailVerify) -> EmailVerified:
    return await service_verification.confirm_email(ctx, _keys(ctx), payload.token)


@handles(TWO_FACTOR_ENROLL)
async def enroll_two_factor(ctx: RequestContext, _: Empty) -> TwoFactorEnrollment:
    return await service_two_factor.enroll(ctx, _keys(ctx), ctx.runtime.settings.totp_issuer)


@handles(TWO_FACTOR_CONFIRM)
async def confirm_two_factor(ctx: RequestContext, payload: TwoFactorCode) -> TwoFactorEnabled:
    return await service_two_factor.confirm(ctx, _keys(ctx), payload.code)


@handles(TWO_FACTOR_DISABLE)
async def disable_two_factor(ctx: RequestContext, payload: TwoFactorCode) -> TwoFactorDisabled:
    return await service_two_factor.disable(ctx, _keys(ctx), payload.code)


@handles(TWO_FACTOR_RESET)
async def reset_two_factor(ctx: RequestContext, payload: TwoFactorReset) -> TwoFactorResetDone:
    return await service_two_factor_reset.reset(ctx, _keys(ctx), payload)


def build_definition() -> ServiceDefinition:
    """A tenancy service with a router of its own: each `ServiceRuntime` needs one (the router holds its runtime)."""
    router = ServiceRouter("tenancy")
    for spec, fn, options in _handlers:
        router.handler(spec, **options)(fn)
    return ServiceDefinition(name="tenancy", version=__version__, router=router, on_start=[_start], on_stop=[_stop])


definition = build_definition()
