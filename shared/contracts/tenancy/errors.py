"""Tenancy's errors: refinements of the shared families, so callers can catch either.

Each class with a `code` is registered by that code when it is defined, so a
caller that imports `shared.contracts.tenancy` gets the typed error back from a
reply, not only its family.
"""

from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound


class TenancyError(Exception):
    """Marker root: every error raised by the tenancy service's own rules."""


class OrganizationNotWritable(TenancyError, Forbidden):
    """The organization is suspended, cancelled or past its trial: it may read, not write."""

    code = "org_not_writable"


class LastOwner(TenancyError, Conflict):
    """An organization must keep at least one owner."""

    code = "last_owner"


class InviteInvalid(TenancyError, InvalidRequest):
    """The invitation token is unknown, already used or expired."""

    code = "invite_invalid"


class InviteNeedsSignIn(TenancyError, Forbidden):
    """The invitation is for an existing account: only that account, signed in, may accept it."""

    code = "invite_needs_sign_in"


class DomainNotAllowed(TenancyError, Forbidden):
    """The email's domain is not in the organization's `allowed_domains`."""

    code = "domain_not_allowed"


class OrganizationNotFound(TenancyError, NotFound):
    pass


class PersonNotFound(TenancyError, NotFound):
    pass


class QuotaNotFound(TenancyError, NotFound):
    """The organization has no quota for this metric (for org-registered metrics: unlimited)."""

    code = "quota_not_found"


class SignupClosed(TenancyError, Forbidden):
    """The organization (or, for a new org, the platform) does not allow self-service signup."""

    code = "signup_closed"


class VerificationInvalid(TenancyError, InvalidRequest):
    """The email verification token is unknown, already used, expired, or for an email the person no longer has."""

    code = "verification_invalid"


class EmailAlreadyVerified(TenancyError, Conflict):
    """The person's email is verified already: there is nothing to send."""

    code = "email_already_verified"


class EmailNotVerified(TenancyError, Forbidden):
    """The acting person's own email must be verified first."""

    code = "email_not_verified"


class TwoFactorRequired(TenancyError, Forbidden):
    """The organization requires two-factor authentication for this: enable it and pass a current code in `otp`."""

    code = "two_factor_required"


class TwoFactorCodeInvalid(TenancyError, Forbidden):
    """The one-time code is wrong, too old, already used, or not a backup code of this person."""

    code = "two_factor_code_invalid"


class TwoFactorState(TenancyError, Conflict):
    """Two-factor authentication is not in the state the operation needs (already on, not enrolled, not on)."""

    code = "two_factor_state"
