"""Pack fixtures: the gateway's callers and tenancy's accounts, and the valid properties of the tutoring pack's types."""

from typing import Any

import httpx

from tests.gateway.conftest import Caller, alice, bob, http  # noqa: F401 (fixtures)
from tests.tenancy.conftest import admin, owner  # noqa: F401 (fixtures)

COURSE: dict[str, Any] = {"title": "Algebra I", "price": 120, "currency": "EUR", "subject": "algebra", "level": "beginner"}
"""A course the spec's structure and the tutoring pack's schema both accept."""
LESSON: dict[str, Any] = {"order": 1, "durationMinutes": 45}
SESSION: dict[str, Any] = {"scheduledAt": "2026-12-01T10:00:00Z", "durationMinutes": 60, "tutorNotes": "weak on fractions"}
PACK_WAIT = 60.0
"""Seconds a test waits for an install or uninstall: a dozen requests to other services, on a loaded machine."""


async def over_http(caller: Caller, method: str, path: str, body: Any = None) -> httpx.Response:
    """An install or uninstall over HTTP, waited for as long as the gateway waits for it."""
    return await caller.http.request(method, path, json=body, timeout=PACK_WAIT)
