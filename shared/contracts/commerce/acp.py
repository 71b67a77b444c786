"""ACP checkout on the bus: the gateway's `/acp/checkout_sessions` routes, answered by commerce.

Requests carry ACP's own JSON bodies (`request`, checked against the 2026-04-17 JSON Schema bundle on
both sides: `acp_schema.py`) and replies carry ACP's `CheckoutSession` (`session`), so the gateway
only adds HTTP. Subjects are `one.proto.acp.checkout.<verb>`, envelopes tagged `acp`; the CLI's
`one checkout list|show` uses the same messages tagged `native`. Permissions are on resource `acp` (as
Delegate Payment's): `acp:checkout_create|checkout_update|checkout_complete|checkout_cancel`, `acp:read`,
`acp:list`; an agent platform's key is scoped `acp:*`.

Quantities: the bundle's request `Item` has no quantity, so a request lists an item once per unit
(`[{"id": p}, {"id": p}]` is two of `p`); a response's line item says `quantity`. Prices in a request
(`unit_amount`, `name`) are ignored: the catalog's price is charged.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.contracts.commerce.idempotency import IdempotencyClaim, StoredAnswer
from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import Conflict, InvalidRequest, NotFound

SessionStatus = Literal["incomplete", "not_ready_for_payment", "requires_escalation", "authentication_required",
                        "ready_for_payment", "pending_approval", "complete_in_progress", "completed", "canceled",
                        "in_progress", "expired"]
OPEN_STATUSES = ("incomplete", "not_ready_for_payment", "requires_escalation", "authentication_required",
                 "ready_for_payment")
"""Statuses in which a session can still be updated (and canceled)."""


class CheckoutSessionNotFound(NotFound):
    code = "checkout_session_not_found"


class CheckoutNotAllowed(Conflict):
    """The session's status does not allow this (cancel after complete, update after cancel, ...): HTTP 405."""

    code = "checkout_not_allowed"


class CheckoutNotReady(InvalidRequest):
    """`complete` on a session that is not `ready_for_payment`; `details.status` says where it is."""

    code = "checkout_not_ready"


class CheckoutBusy(Conflict):
    """Another `complete` of this session is being processed (`complete_in_progress`): retry later."""

    code = "checkout_busy"


class CheckoutCreate(Payload):
    request: dict[str, Any] = Field(description="ACP `CheckoutSessionCreateRequest`.")
    idempotency: IdempotencyClaim | None = None


class CheckoutUpdate(Payload):
    id: str = Field(min_length=1, max_length=100)
    request: dict[str, Any] = Field(description="ACP `CheckoutSessionUpdateRequest`.")
    idempotency: IdempotencyClaim | None = None


class CheckoutComplete(Payload):
    id: str = Field(min_length=1, max_length=100)
    request: dict[str, Any] = Field(description="ACP `CheckoutSessionCompleteRequest`.")
    idempotency_key: str | None = Field(None, max_length=255, description="The caller's Idempotency-Key, handed "
                                        "to the PSP so one attempt charges at most once.")
    idempotency: IdempotencyClaim | None = None


class CheckoutCancel(Payload):
    id: str = Field(min_length=1, max_length=100)
    request: dict[str, Any] = Field(default_factory=dict, description="ACP `CancelSessionRequest` (may be empty).")
    idempotency: IdempotencyClaim | None = None


class CheckoutTarget(Payload):
    id: str = Field(min_length=1, max_length=100)


class CheckoutQuery(Payload):
    status: SessionStatus | None = None
    before: datetime | None = Field(None, description="Sessions created before this instant (the next page).")
    limit: int = Field(50, ge=1, le=200)


class CheckoutSession(BaseModel):
    """ACP `CheckoutSession` (or `CheckoutSessionWithOrder` once completed), exactly as the protocol writes it."""

    session: dict[str, Any]
    stored: bool = Field(False, description="The answer was stored under the request's `IdempotencyClaim`.")
    replay: StoredAnswer | None = Field(None, description="The claim's key was answered before: send this back.")


class CheckoutSummary(BaseModel):
    id: str
    status: SessionStatus
    currency: str
    total: int
    items: int
    order_id: str | None = None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


class CheckoutPage(BaseModel):
    sessions: list[CheckoutSummary]
    next_before: datetime | None = None


_ACP = (Protocol.ACP,)
_ACP_OR_NATIVE = (Protocol.ACP, Protocol.NATIVE)


def _message(verb: str, payload: type[Payload], result: type[BaseModel], protocols: tuple[Protocol, ...],
             permission: str) -> Any:
    return register_message(f"acp.checkout.{verb}", subjects.proto("acp", f"checkout.{verb}"), payload, result,
                            protocols=protocols, permission=permission)


CHECKOUT_CREATE = _message("create", CheckoutCreate, CheckoutSession, _ACP, "acp:checkout_create")
CHECKOUT_UPDATE = _message("update", CheckoutUpdate, CheckoutSession, _ACP, "acp:checkout_update")
CHECKOUT_GET = _message("get", CheckoutTarget, CheckoutSession, _ACP_OR_NATIVE, "acp:read")
CHECKOUT_COMPLETE = _message("complete", CheckoutComplete, CheckoutSession, _ACP, "acp:checkout_complete")
CHECKOUT_CANCEL = _message("cancel", CheckoutCancel, CheckoutSession, _ACP_OR_NATIVE, "acp:checkout_cancel")
CHECKOUT_LIST = _message("list", CheckoutQuery, CheckoutPage, _ACP_OR_NATIVE, "acp:list")
