"""Email verification: a person asks for a token for their own email, then confirms with the token alone.

The token (`ev_<verification id hex>_<32 base62>`) is random; only its keyed
HMAC under the API-key pepper is stored, as for invites and keys. It leaves
tenancy once, through the core-NATS mail drop (`one.notify.email`, `TenancyState.send_mail`)
that a mailer consumes: never in a reply, never in an event (events are kept forever). Expiry
is on the database clock.

In an org whose settings require verification, keys of a member whose email is
unverified carry only `email:verify` (`service_keys.verify_key`), so every
service refuses everything else through the same RBAC call; confirming drops
the person's cached keys in every org they belong to.
"""

from uuid import UUID

from services.tenancy import repository as repo, repository_access as access_repo, repository_security as security_repo
from services.tenancy.schemas import MailDrop
from services.tenancy.service import record, resolve_actor, thing_type_of
from services.tenancy.state import TenancyState
from services.tenancy.tokens import new_token, token_row_id
from shared.contracts.tenancy import (
    EmailAlreadyVerified,
    EmailVerified,
    PersonNotFound,
    VerificationInvalid,
    VerificationSent,
)
from shared.kernel.errors import Forbidden, RateLimited
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import EMAIL_VERIFICATION_SCOPE, scope_allows
from shared.runtime.context import WorkContext

_REQUEST_WINDOW = 3600


def _verification_id(token: str) -> UUID:
    row_id = token_row_id("ev", token)
    if row_id is None:
        raise VerificationInvalid("not an email verification token")
    return row_id


async def request_verification(
    ctx: WorkContext, replica: TenancyState, *, ttl_seconds: float, per_hour: int
) -> VerificationSent:
    """A new token for the actor's own email (earlier pending ones stop working), mailed, logged without it.

    The mail is handed over as the transaction's last step: if that fails, the
    token and its event roll back; if the commit fails after it, the mail holds
    a token that does not work and the person asks again.
    """
    actor = await resolve_actor(ctx)
    resource, _, action = EMAIL_VERIFICATION_SCOPE.partition(":")
    if not scope_allows(actor.scopes, resource, action):
        raise Forbidden(f"the API key's scopes do not include {EMAIL_VERIFICATION_SCOPE}", {"resource": resource, "action": action})
    person = await repo.get_person(ctx.session, actor.person_id)
    if person is None:
        raise PersonNotFound("no such person")
    if person.email_verified_at is not None:
        raise EmailAlreadyVerified(f"{person.email} was verified at {person.email_verified_at.isoformat()}")
    calls, left = await access_repo.hit_window(ctx.session, actor.org_id, f"email-verification:{person.id}", per_hour, _REQUEST_WINDOW)
    if calls is None:
        raise RateLimited(f"at most {per_hour} verification emails an hour; retry in {left:.0f}s",
                          {"retry_after": round(left, 3), "scope": "email_verification", "limit": per_hour,
                           "window_seconds": _REQUEST_WINDOW})
    verification_id = uuid7()
    token = new_token("ev", verification_id)
    expires_at = await security_repo.replace_verification(ctx.session, {
        "id": verification_id, "org_id": actor.org_id, "person_id": person.id, "email": person.email,
        "token_hash": replica.keys.hash(token),
    }, ttl_seconds)
    await record(ctx, EventType.EMAIL_VERIFICATION_SENT, org_id=actor.org_id, target_id=person.id,
                 target_type=thing_type_of(person.role),
                 metadata={"email": person.email, "verificationId": str(verification_id), "expiresAt": expires_at.isoformat()})
    await replica.send_mail(MailDrop(to=person.email, purpose="email_verification", token=token, expires_at=expires_at))
    return VerificationSent(email=person.email, expires_at=expires_at)


async def confirm_email(ctx: WorkContext, replica: TenancyState, token: str) -> EmailVerified:
    """The token alone is the proof: the email is verified, the token used, the person's cached keys dropped."""
    verification_id = _verification_id(token)
    async with repo.platform_access(ctx.session):
        row = await security_repo.get_verification(ctx.session, verification_id)
    if row is None or not replica.keys.matches(token.strip(), row.token_hash):
        raise VerificationInvalid("unknown verification token")
    if row.used_at is not None:
        raise VerificationInvalid("this verification token has already been used")
    if row.expired:
        raise VerificationInvalid(f"this verification token expired at {row.expires_at.isoformat()}: ask for a new one")
    await repo.switch_org(ctx.session, row.org_id)
    async with repo.platform_access(ctx.session):
        verified_at = await security_repo.mark_email_verified(ctx.session, row.person_id, row.email)
        if verified_at is None:
            raise VerificationInvalid("this token is for an email address the person no longer has")
        person = await repo.get_person(ctx.session, row.person_id)
        org_ids = await repo.org_ids_of(ctx.session, row.person_id)
    await security_repo.use_verification(ctx.session, row.org_id, row.id)
    for org_id in org_ids:
        replica.invalidate_keys(org_id=org_id, person_id=row.person_id)
    await record(ctx, EventType.EMAIL_VERIFIED, org_id=row.org_id, target_id=row.person_id,
                 target_type=thing_type_of(person.role), actor_id=row.person_id,
                 metadata={"email": row.email, "verificationMethod": "link", "verificationId": str(row.id)})
    return EmailVerified(person_id=row.person_id, email=row.email, email_verified_at=verified_at)
