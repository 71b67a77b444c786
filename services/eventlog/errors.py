"""The event log's errors: one root, refined by what was wrong with an event."""

from typing import Any

from shared.kernel.errors import InvalidRequest


class InvalidEvent(InvalidRequest):
    """An event the log will not store; `reason_code` says why (also the dead-letter reason)."""

    def __init__(self, reason_code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, {"reason": reason_code, **(details or {})})
        self.reason_code = reason_code
