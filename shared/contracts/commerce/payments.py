"""Payments behind ACP checkout: the PSP's charge, its refusals, and ACP's Delegate Payment on the bus.

A checkout's `complete` charges through a payment provider (`services/commerce/psp.py`); what a
charge returns (`Charge`) and why one is refused (`PaymentDeclined`, `details.reason`) are the same
whichever provider is configured. The built-in test-mode provider is ACP's Delegate Payment API:
an agent platform vaults a credential with an allowance (`DELEGATE_PAYMENT`, the gateway's
`POST /acp/agentic_commerce/delegate_payment`), and the vault token it gets back pays for exactly
one checkout session, once, up to the allowance, before it expires.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.commerce.idempotency import IdempotencyClaim, StoredAnswer
from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import InvalidRequest

DeclineReason = Literal["over_allowance", "expired", "reused", "wrong_session", "wrong_currency", "unknown_token",
                        "revoked", "provider_error", "card_declined", "insufficient_funds"]


class PaymentDeclined(InvalidRequest):
    """The provider refused the charge; `details.reason` is a `DeclineReason`, `details.provider` names the PSP."""

    code = "payment_declined"

    def __init__(self, reason: DeclineReason, message: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message or f"payment declined: {reason}", {"reason": reason, **(details or {})})

    @property
    def reason(self) -> str:
        return str(self.details.get("reason", "provider_error"))


class Charge(BaseModel):
    """One successful charge: `amount` in integer minor units of `currency` (ISO 4217, lower case as ACP writes it)."""

    id: str = Field(description="The provider's charge id.")
    provider: str = Field(description="The PSP that charged, e.g. `test` (the built-in Delegate Payment vault).")
    status: Literal["succeeded"] = "succeeded"
    amount: int = Field(ge=0)
    currency: str
    token: str = Field(description="The credential token charged (a vault token `vt_...` for the test PSP).")
    checkout_session_id: str
    live: bool = Field(False, description="False for a test-mode provider: no money moved.")


class DelegatedCard(BaseModel):
    """ACP `PaymentMethodCard`: the fields the vault reads; the rest (checks, metadata) is kept as sent."""

    model_config = ConfigDict(extra="allow")
    type: Literal["card"]
    card_number_type: str
    number: str = Field(min_length=1, max_length=64)
    exp_month: str | None = Field(None, max_length=2)
    exp_year: str | None = Field(None, max_length=4)
    display_brand: str | None = None
    display_last4: str | None = None
    display_card_funding_type: str | None = None
    iin: str | None = None


class Allowance(BaseModel):
    """ACP `Allowance`: what the vault token may pay for."""

    model_config = ConfigDict(extra="forbid")
    reason: Literal["one_time"]
    max_amount: int = Field(ge=0)
    currency: str = Field(pattern=r"^[a-z]{3}$")
    checkout_session_id: str = Field(min_length=1, max_length=255)
    merchant_id: str = Field(max_length=256)
    expires_at: datetime


class DelegatePaymentCreate(Payload):
    """ACP `DelegatePaymentRequest` (snake_case, as sent), checked against the JSON Schema at the edge."""

    payment_method: DelegatedCard
    allowance: Allowance
    billing_address: dict[str, Any] | None = None
    risk_signals: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    idempotency: IdempotencyClaim | None = Field(None, description="The edge's key (never part of ACP's body).")


class DelegationRefused(InvalidRequest):
    """The credential cannot be vaulted (e.g. a card number that fails its check digit, an expired card);
    `details.param` is the JSONPath of the offending field, `details.acp_code` ACP's error code."""

    code = "payment_delegation_refused"


class DelegatePaymentCreated(BaseModel):
    """ACP `DelegatePaymentResponse`: `id` (`vt_...`), `created`, `metadata`."""

    response: dict[str, Any]
    stored: bool = False
    replay: StoredAnswer | None = None


class VaultTokenQuery(Payload):
    token: str = Field(min_length=1, max_length=255)


class VaultToken(BaseModel):
    """A vault token's allowance and state (never the card number: only its display fields are kept)."""

    id: str
    provider: str
    max_amount: int
    currency: str
    checkout_session_id: str
    merchant_id: str
    expires_at: datetime
    reason: str
    display: dict[str, Any] = Field(default_factory=dict, description="Brand, last4, funding type as sent.")
    charged_at: datetime | None = None
    charge_id: str | None = None
    charged_amount: int | None = None
    created_at: datetime


_ACP = (Protocol.ACP,)

DELEGATE_PAYMENT = register_message("acp.delegate_payment", subjects.proto("acp", "delegate_payment"),
                                    DelegatePaymentCreate, DelegatePaymentCreated, protocols=_ACP,
                                    permission="acp:delegate_payment")
VAULT_TOKEN_GET = register_message("acp.vault_token.get", subjects.proto("acp", "vault_token.get"), VaultTokenQuery,
                                   VaultToken, protocols=(Protocol.ACP, Protocol.NATIVE), permission="acp:read")
