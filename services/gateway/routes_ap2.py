"""AP2 v2 over the platform's REST (`/v1/ap2/...`), one bus request per route, envelopes tagged `ap2`.

The org's public keys are published without a key at `/v1/ap2/{org id}/jwks.json` (the `iss` of its
checkout JWTs and receipts, and of the mandates it grants its agents, is the org id): a buyer checks a
receipt with them, another org puts them on its trust list. Reading them makes none: an org's keys
exist once it created a checkout, granted a mandate, or asked for its own keys (`GET /v1/ap2/jwks`).
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import Field

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus, _set
from services.gateway.shapes import derived
from shared.contracts.commerce.ap2 import (
    AP2_ACP_CHECKOUT,
    AP2_CHECKOUT_CREATE,
    AP2_GRANT,
    AP2_HELD,
    AP2_JWKS,
    AP2_MANDATE_LIST,
    AP2_PRESENT,
    AP2_RECEIPT_GET,
    AP2_RECEIPT_LIST,
    AP2_REVOKE,
    AP2_TRUST_ADD,
    AP2_TRUST_LIST,
    AP2_V1_ACCEPT,
    AcpCheckoutSign,
    Ap2Checkout,
    CheckoutCreate,
    GrantedMandate,
    HeldMandates,
    Jwks,
    MandateGrant,
    Mandates,
    Receipt,
    Receipts,
    RevokedMandate,
    TrustAdd,
    TrustedIssuer,
    TrustedIssuers,
    V1Mandate,
    V1MandateAccept,
)
from shared.kernel.envelope import Payload, Protocol
from shared.runtime.context import service_identity

router = APIRouter(prefix="/v1/ap2", tags=["ap2"])
PUBLIC_IDENTITY = "ap2-jwks"
"""Who reads an org's public keys for an anonymous caller: this identity, only `mandates:keys`, in that org."""
AcpCheckoutIn = derived(AcpCheckoutSign, "AcpCheckoutIn", drop=("session_id",))


class Presentation(Payload):
    mandate: str = Field(min_length=1, max_length=200_000, description="The dSD-JWT chain: open mandate "
                         "(~~ delegations) ~~ closed.")
    kind: Literal["payment", "checkout"] = Field("payment", description="A payment mandate (pays the checkout) or a "
                                                 "checkout mandate (authorizes its contents).")


@router.get("/{org_id}/jwks.json", responses=READ)
async def published_jwks(org_id: UUID, bus: Bus) -> Jwks:
    """The org's public ES256 keys (merchant and credential provider), no API key needed."""
    auth = service_identity(PUBLIC_IDENTITY, org_id, ("mandates:keys",))
    return await bus.request(AP2_JWKS, {}, auth, protocol=Protocol.AP2)


@router.get("/jwks", responses=READ)
async def own_jwks(caller: Caller, bus: Bus) -> Jwks:
    """The caller's org's keys, made now if it has none yet."""
    return await bus.request(AP2_JWKS, {"create": True}, caller, protocol=Protocol.AP2)


@router.post("/trust", status_code=201, responses=WRITE)
async def trust_add(body: TrustAdd, caller: Caller, bus: Bus) -> TrustedIssuer:
    """Accept mandates signed by this credential provider's keys (its JWKS)."""
    return await bus.request(AP2_TRUST_ADD, body, caller, protocol=Protocol.AP2)


@router.get("/trust", responses=READ)
async def trust_list(caller: Caller, bus: Bus) -> TrustedIssuers:
    return await bus.request(AP2_TRUST_LIST, {}, caller, protocol=Protocol.AP2)


@router.post("/checkouts", status_code=201, responses=WRITE)
async def create_checkout(body: CheckoutCreate, caller: Caller, bus: Bus) -> Ap2Checkout:
    """A merchant-signed checkout JWT, its hash and the single-use nonce a closed mandate must carry."""
    return await bus.request(AP2_CHECKOUT_CREATE, body, caller, protocol=Protocol.AP2)


@router.post("/checkouts/{checkout_id}/mandate", status_code=201, responses=WRITE)
async def present(checkout_id: UUID, body: Presentation, caller: Caller, bus: Bus) -> Receipt:
    """Pay the checkout with a mandate chain: a signed receipt, or 403 `mandate_refused` naming the reason."""
    return await bus.request(AP2_PRESENT, {"checkout_id": checkout_id, "mandate": body.mandate, "kind": body.kind},
                             caller, protocol=Protocol.AP2)


@router.post("/acp/checkout_sessions/{session_id}/checkout", status_code=201, responses=WRITE)
async def checkout_for_acp_session(session_id: str, caller: Caller, bus: Bus,
                                   body: AcpCheckoutIn | None = None) -> Ap2Checkout:  # type: ignore[valid-type]
    """A merchant-signed AP2 checkout for one of the org's ACP checkout sessions, ready for payment: a closed
    checkout mandate binds to it, a closed payment mandate pays and completes the session (404 for a session not
    the org's, 409 `checkout_not_allowed` if not ready)."""
    return await bus.request(AP2_ACP_CHECKOUT, {"session_id": session_id, **(_set(body) if body is not None else {})},
                             caller, protocol=Protocol.AP2)


@router.get("/receipts", responses=READ)
async def list_receipts(caller: Caller, bus: Bus, limit: int = Query(50, ge=1, le=500),
                        before: datetime | None = None) -> Receipts:
    """The org's receipts, newest first."""
    return await bus.request(AP2_RECEIPT_LIST, {"limit": limit, "before": before}, caller, protocol=Protocol.AP2)


@router.get("/receipts/{receipt_id}", responses=READ)
async def get_receipt(receipt_id: UUID, caller: Caller, bus: Bus) -> Receipt:
    return await bus.request(AP2_RECEIPT_GET, {"id": receipt_id}, caller, protocol=Protocol.AP2)


@router.post("/mandates", status_code=201, responses=WRITE)
async def grant(body: MandateGrant, caller: Caller, bus: Bus) -> GrantedMandate:
    """Grant one of the org's agents an open payment mandate, signed as the org's credential provider."""
    return await bus.request(AP2_GRANT, body, caller, protocol=Protocol.AP2)


@router.post("/mandates/{mandate_id}/revoke", responses=WRITE)
async def revoke(mandate_id: UUID, caller: Caller, bus: Bus) -> RevokedMandate:
    """Revoke a mandate the org granted: its agent can close it no more."""
    return await bus.request(AP2_REVOKE, {"id": mandate_id}, caller, protocol=Protocol.AP2)


@router.get("/mandates/held", responses=READ)
async def held_mandates(caller: Caller, bus: Bus, agent_id: UUID | None = None) -> HeldMandates:
    """The active open mandates granted to an agent of the org, with what remains of each (budget and uses left, the
    most a purchase may spend now, whether it can pay at all); `agent_id` is required (422 without it)."""
    return await bus.request(AP2_HELD, {"agent_id": agent_id}, caller, protocol=Protocol.AP2)


@router.get("/mandates", responses=READ)
async def list_mandates(caller: Caller, bus: Bus, direction: Literal["granted", "accepted"] | None = None,
                        agent_id: UUID | None = None, limit: int = Query(50, ge=1, le=500),
                        before: datetime | None = None) -> Mandates:
    """The org's mandates, newest first: granted to its agents, or accepted as a merchant."""
    return await bus.request(AP2_MANDATE_LIST, {"direction": direction, "agent_id": agent_id, "limit": limit,
                                                "before": before}, caller, protocol=Protocol.AP2)


@router.post("/v1/mandates", status_code=201, responses=WRITE)
async def accept_v1(body: V1MandateAccept, caller: Caller, bus: Bus) -> V1Mandate:
    """An AP2 V1 IntentMandate / CartMandate / PaymentMandate, recorded and mapped (`signed: false` unless verified)."""
    return await bus.request(AP2_V1_ACCEPT, body, caller, protocol=Protocol.AP2)
