"""ACP idempotency on the bus: the gateway asks commerce before and after each ACP POST.

`begin` claims (org, caller, endpoint, key) for one request whose body hashes to `request_hash`:
the first gets `proceed` and a `lock_id`; a later one with the same body gets the stored answer
(`replay`) once it exists, or `IdempotencyInFlight` (409, `details.retry_after` seconds) while the
first is still working; one with another body gets `IdempotencyConflict` (422). `finish` stores the
answer under the `lock_id` (a 5xx answer releases the key instead: it is never replayed). The
caller is the envelope's actor, never a field a client could set, so keys are scoped to who sent
them. Records live in commerce's Postgres schema, so every gateway replica and a restart agree.

The fast path: a request answered by one commerce message (checkout create / update / complete / cancel,
Delegate Payment) carries its key with it (`IdempotencyClaim`): commerce claims it in the work's own
transaction and stores the answer there (`answer_text`, byte for byte what the edge sends), so a
request costs no extra round trip; a replay comes back as `StoredAnswer`. Only when that request ends in
an error (its transaction rolled back, or never reached commerce) does the edge `begin` (with the
claim's `lock_id`: its own claim is taken back, not refused) and `finish` after the answer.
"""

import json
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import Conflict, InvalidRequest


class IdempotencyConflict(InvalidRequest):
    """The key was used before with a different request body (ACP: 422 `idempotency_conflict`)."""

    code = "acp_idempotency_conflict"  # graph's `idempotency_conflict` is another error


class IdempotencyInFlight(Conflict):
    """The key's first request is still being processed (ACP: 409 `idempotency_in_flight`, `details.retry_after`)."""

    code = "acp_idempotency_in_flight"


class IdempotencyBegin(Payload):
    endpoint: str = Field(min_length=1, max_length=512, description="Method and path, e.g. `POST /acp/checkout_sessions`.")
    key: str = Field(min_length=1, max_length=255, description="The `Idempotency-Key` header.")
    request_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the request body (canonical JSON).")
    lock_id: UUID | None = Field(None, description="A claim this request already made (`IdempotencyClaim`): "
                                 "taken back while still in flight, not refused.")


class IdempotencyClaim(Payload):
    """A key carried by the request it guards: claimed, and its answer stored, in the work's own transaction."""

    endpoint: str = Field(min_length=1, max_length=512)
    key: str = Field(min_length=1, max_length=255)
    request_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    lock_id: UUID
    status: int = Field(ge=200, le=299, description="The HTTP status the edge answers a success with.")


class StoredAnswer(BaseModel):
    """An answer as stored for replay: status, the headers worth replaying, the body as sent."""

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: str


JSON_HEADERS = {"content-type": "application/json"}


def answer_text(body: Any) -> str:
    """A JSON answer exactly as the edge sends it (Starlette's `JSONResponse` rendering), for byte-equal replays."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


class IdempotencyStarted(BaseModel):
    """`proceed` (run the request, then `finish` with `lock_id`) or `replay` (send the stored answer back)."""

    outcome: Literal["proceed", "replay"]
    lock_id: UUID | None = None
    status: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None


class IdempotencyFinish(Payload):
    endpoint: str = Field(min_length=1, max_length=512)
    key: str = Field(min_length=1, max_length=255)
    lock_id: UUID
    status: int = Field(ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict, description="The answer's headers worth replaying.")
    body: str = Field(description="The answer's body, as sent (replayed byte for byte).")


class IdempotencyFinished(BaseModel):
    stored: bool = Field(description="False for a 5xx answer (the key was released) or a lock lost to a takeover.")


_ACP = (Protocol.ACP,)

IDEMPOTENCY_BEGIN = register_message("acp.idempotency.begin", subjects.proto("acp", "idempotency.begin"),
                                     IdempotencyBegin, IdempotencyStarted, protocols=_ACP)
IDEMPOTENCY_FINISH = register_message("acp.idempotency.finish", subjects.proto("acp", "idempotency.finish"),
                                      IdempotencyFinish, IdempotencyFinished, protocols=_ACP)
