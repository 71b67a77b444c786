"""One error root with stable codes.

Errors cross the bus as typed replies (`{code, message, details}`) and are raised
again on the caller's side, so a caller catches `NotFound`, never a timeout or a
stack trace. Each service adds a few subclasses in its own `errors.py`.
"""

from typing import Any, ClassVar


class OneError(Exception):
    """Root of every error the platform reports; `code` is stable across versions."""

    code: ClassVar[str] = "internal"
    _by_code: ClassVar[dict[str, type["OneError"]]] = {}

    def __init__(self, message: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The most general class registered for a code wins, so subclasses that
        # share a code (service-specific refinements) never shadow the family.
        OneError._by_code.setdefault(cls.code, cls)

    @classmethod
    def family(cls) -> str:
        """The code of the nearest family defined here: what a caller that doesn't know `code` catches."""
        return next(c.code for c in cls.__mro__ if issubclass(c, OneError) and c.__module__ == __name__)

    def to_payload(self) -> dict[str, Any]:
        return {"code": self.code, "family": self.family(), "message": self.message, "details": self.details}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "OneError":
        """Rebuild the typed error from a reply.

        A service-specific code the caller has not imported (e.g. `last_owner`)
        comes back as its family (`Conflict`) with the specific `code` kept, so
        `except Conflict` works everywhere.
        """
        code = str(payload.get("code") or "internal")
        message = str(payload.get("message") or code)
        details = payload.get("details") or {}
        error_class = cls._by_code.get(code)
        if error_class is None:
            family = cls._by_code.get(str(payload.get("family") or ""), OneError)
            error = family.__new__(family)
            OneError.__init__(error, message, details)
            error.code = code  # type: ignore[misc]
            return error
        error = error_class.__new__(error_class)
        OneError.__init__(error, message, details)
        return error

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidRequest(OneError):
    """The request is malformed or fails validation."""

    code = "invalid"


class MalformedMessage(InvalidRequest):
    """The bytes on the wire are not JSON or not an envelope."""

    code = "malformed"


class UnknownMessageType(InvalidRequest):
    """No payload model is registered for this message type (at this subject)."""

    code = "unknown_type"


class ProtocolMismatch(InvalidRequest):
    """The envelope's protocol tag is not one this message type accepts."""

    code = "protocol_mismatch"


class PayloadTooLarge(InvalidRequest):
    """A request or its reply is larger than the broker carries (NATS `max_payload`, 1 MB by
    default); `details` has the size and the limit. Ask for less (a smaller page, fewer items)."""

    code = "payload_too_large"


class Unauthenticated(OneError):
    """The envelope carries no (or an unverifiable) auth context."""

    code = "unauthenticated"


class Forbidden(OneError):
    """The actor may not do this."""

    code = "forbidden"


class NotFound(OneError):
    """The thing asked for does not exist in the caller's organization."""

    code = "not_found"


class Conflict(OneError):
    """The change conflicts with the current state (duplicate, stale version, ...)."""

    code = "conflict"


class QuotaExceeded(OneError):
    """The organization has used up a quota."""

    code = "quota_exceeded"


class RateLimited(OneError):
    """Too many calls in the current window; `details.retry_after` says when to retry."""

    code = "rate_limited"

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retry_after")
        return float(value) if value is not None else None


class Unavailable(OneError):
    """The service did not answer (no responders, timeout, broker down)."""

    code = "unavailable"


class Internal(OneError):
    """An unexpected failure; details carry an error id to find it in the logs."""

    code = "internal"
