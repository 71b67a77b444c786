"""AP2 v2 on the bus: a merchant's checkout JWT, a presented mandate chain verified into a signed receipt, the
per-org trust list of credential providers, the org's published keys, and mandates granted to the org's agents.

Subjects are `one.proto.ap2.<verb>`, envelopes tagged `ap2` (the gateway's `/v1/ap2/...` routes send them;
the A2A transport will too). Mandates and receipts are the official AP2 v2 shapes (JSON Schemas in
`services/commerce/ap2/schemas/`); a refused mandate names the check it failed in `details.reason`.
"""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import Forbidden

REASONS = ("malformed", "untrusted_issuer", "invalid_mandate", "key_binding", "aud", "nonce", "nonce_reused",
           "expired", "checkout_hash", "payment_amount", "amount_range", "allowed_payees", "budget", "recurrence",
           "execution_date", "allowed_payment_instruments", "allowed_pisps", "payee", "revoked", "widened",
           "allowed_merchants", "line_items", "checked_out", "reference", "refused_before", "checkout_changed")
"""Every `details.reason` a `MandateRefused` may carry."""


class MandateRefused(Forbidden):
    """The presented mandate chain does not authorize this payment: `details.reason` (one of `REASONS`) says why,
    `details.hop` which hop of the chain (0 the root) when the reason concerns one."""

    code = "mandate_refused"


class TrustAdd(Payload):
    issuer: str = Field(min_length=1, max_length=500, description="The credential provider's name or URL.")
    jwks: dict[str, Any] = Field(description="Its JSON Web Key Set (`{\"keys\": [...]}`, EC P-256 keys with `kid`).")


class TrustList(Payload):
    pass


class TrustedIssuer(BaseModel):
    id: UUID
    issuer: str
    kids: list[str]
    created_at: datetime


class TrustedIssuers(BaseModel):
    items: list[TrustedIssuer]


class JwksGet(Payload):
    create: bool = Field(False, description="Make the org's keys if it has none yet (needs `mandates:update`).")


class Jwks(BaseModel):
    keys: list[dict[str, Any]] = Field(description="The org's public keys: `merchant` (checkouts, receipts) and "
                                                   "`issuer` (the mandates it grants its agents), by `kid`.")


class CheckoutCreate(Payload):
    amount: int = Field(gt=0, description="The total, in minor units of `currency`.")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    items: list[dict[str, Any]] = Field(default_factory=list, max_length=100,
                                        description="Line items (types/item.json: id, title, price).")
    merchant_name: str = Field("Merchant", min_length=1, max_length=200)
    ttl_seconds: int = Field(900, gt=0, le=86400)


class Ap2Checkout(BaseModel):
    id: UUID
    merchant_id: str = Field(description="The `aud` a closed mandate must name, and the payee's `id`.")
    checkout_jwt: str = Field(description="The merchant-signed checkout (ES256, the org's merchant key).")
    checkout_hash: str = Field(description="base64url sha-256 of `checkout_jwt`: the closed mandate's "
                                           "`transaction_id`.")
    nonce: str = Field(description="Single use: the closed mandate's key-binding `nonce`.")
    amount: int
    currency: str
    status: str
    expires_at: datetime
    acp_session_id: str | None = Field(None, description="The ACP checkout session this checkout was signed for.")


class AcpCheckoutSign(Payload):
    """A merchant-signed AP2 checkout for one of the org's ACP checkout sessions, as it stands now (ready for
    payment), so a closed checkout mandate can be bound to it (its hash and nonce) and a closed payment mandate
    can pay and complete the session."""

    session_id: str = Field(min_length=1, max_length=200, description="The ACP checkout session's id.")
    merchant_name: str = Field("Merchant", min_length=1, max_length=200)
    ttl_seconds: int = Field(900, gt=0, le=86400, description="At most until the session expires.")


class MandatePresent(Payload):
    checkout_id: UUID
    mandate: str = Field(min_length=1, max_length=200_000, description="The dSD-JWT chain: open mandate "
                         "(~~ delegations to sub-agents) ~~ closed.")
    kind: Literal["payment", "checkout"] = Field("payment", description="`payment`: a payment mandate pays the "
                                                 "checkout (after the PSP charged it); `checkout`: a checkout "
                                                 "mandate authorizes its contents (a checkout receipt).")


class ReceiptGet(Payload):
    id: UUID


class Receipt(BaseModel):
    id: UUID
    checkout_id: UUID
    mandate_id: UUID = Field(description="The closed mandate's `mandate` thing.")
    receipt_jwt: str = Field(description="The receipt signed with the merchant key (ES256).")
    receipt: dict[str, Any] = Field(description="Its claims (payment_receipt.json, or checkout_receipt.json for a "
                                                "checkout mandate's).")
    created_at: datetime
    kind: Literal["payment", "checkout"] = "payment"
    charge_id: str | None = Field(None, description="The PSP's charge, made before the receipt was signed.")


class MandateGrant(Payload):
    agent_id: UUID = Field(description="The org's agent that will hold the mandate (its key stays in commerce).")
    kind: Literal["payment", "checkout"] = "payment"
    constraints: list[dict[str, Any]] = Field(min_length=1, max_length=50, description="AP2 constraints "
                                              "(open_payment_mandate.json: payment.amount_range, ...; "
                                              "open_checkout_mandate.json: checkout.line_items, ...).")
    payee: dict[str, Any] | None = None
    payment_amount: dict[str, Any] | None = None
    payment_instrument: dict[str, Any] | None = None
    ttl_seconds: int = Field(86400 * 30, gt=0, le=86400 * 366)
    checkout_mandate_id: UUID | None = Field(None, description="A payment mandate only: the open checkout mandate "
                                             "granted to the same agent that it pays for (its `payment.reference` "
                                             "names that mandate's digest; a merchant refuses it for a checkout "
                                             "another checkout mandate authorized).")


class GrantedMandate(BaseModel):
    id: UUID = Field(description="The open mandate's `mandate` thing.")
    agent_id: UUID
    credential: str = Field(description="The root SD-JWT the agent will close for each purchase.")
    credential_hash: str
    mandate: dict[str, Any] = Field(description="The open mandate (open_payment_mandate.json).")
    issuer: str
    expires_at: datetime


class MandateClose(Payload):
    """The agents service, acting for the agent holding the mandate, asks for the closed mandate of one purchase."""

    mandate_id: UUID = Field(description="The open mandate granted to the agent.")
    checkout_jwt: str = Field(min_length=1, max_length=100_000, description="The merchant-signed checkout.")
    nonce: str = Field(min_length=1, max_length=500, description="The merchant's nonce for this checkout.")
    payment_instrument: dict[str, Any] | None = Field(None, description="Unset: the open mandate's, else the "
                                                                        "org's default instrument.")


class ClosedMandate(BaseModel):
    id: UUID
    mandate: str = Field(description="The chain to present: the open mandate ~~ this closed one.")
    closed: dict[str, Any] = Field(description="The closed payment mandate (payment_mandate.json).")


class MandateRelease(Payload):
    """The agents service, acting for the agent that holds it, reports that the merchant definitely refused a
    closed mandate: its use no longer counts against the open mandate's budget and recurrence."""

    mandate_id: UUID = Field(description="The closed mandate (`ClosedMandate.id`) the merchant refused.")
    reason: str = Field(min_length=1, max_length=100, description="The merchant's refusal (`details.reason`, or "
                                                                  "its error code).")


class ReleasedMandate(BaseModel):
    id: UUID = Field(description="The closed mandate, now `released`.")
    fulfills: UUID = Field(description="The open mandate whose budget it no longer uses.")
    status: str


class MandateRevoke(Payload):
    id: UUID = Field(description="A mandate this org granted: its agent can close it no more.")


class RevokedMandate(BaseModel):
    id: UUID
    status: str


class V1MandateAccept(Payload):
    """An AP2 V1 (`ap2` 0.1.x) mandate, recorded and mapped; it authorizes nothing by itself."""

    mandate: dict[str, Any] = Field(description="The V1 message, or `{\"ap2.mandates.<Type>\": message}` as A2A "
                                                "data parts carry it.")
    type: Literal["IntentMandate", "CartMandate", "PaymentMandate"] | None = Field(
        None, description="Its V1 type; unset: read from the A2A data key.")


class V1Mandate(BaseModel):
    id: UUID = Field(description="The `mandate` thing's mandate id.")
    v1_type: str
    mandate_type: Literal["intent", "cart"] = Field(description="IntentMandate: intent; CartMandate and "
                                                                "PaymentMandate: cart.")
    signed: bool = Field(description="False unless the platform verified a signature (V1 carries none it can "
                                     "verify, but a CartMandate this merchant signed).")
    signature_present: bool
    credential_hash: str
    mapped: dict[str, Any] = Field(description="What it says, in the platform's terms (amounts, merchants, expiry).")


class MandateList(Payload):
    direction: Literal["granted", "accepted"] | None = None
    agent_id: UUID | None = None
    limit: int = Field(50, ge=1, le=500)
    before: datetime | None = Field(None, description="Only mandates created before this (the previous page's last).")


class MandateSummary(BaseModel):
    id: UUID
    kind: str = Field(description="open or closed.")
    mandate_type: str = Field(description="payment, checkout (V2); intent, cart, payment (V1).")
    direction: str
    agent_id: UUID | None
    credential_hash: str
    status: str
    fulfills: UUID | None
    expires_at: datetime | None
    version: int
    signed: bool
    issuer: str | None
    created_at: datetime
    claims: dict[str, Any]


class Mandates(BaseModel):
    items: list[MandateSummary]


class HeldList(Payload):
    """The open mandates granted to an agent and still active, with what remains of each (for its model to choose
    one before buying)."""

    agent_id: UUID | None = Field(None, description="The agent; unset: the agent the agents service acts for (a "
                                                    "person of the org names one).")


class HeldMandate(BaseModel):
    id: UUID = Field(description="The `mandate_id` to buy with.")
    kind: str = Field(description="payment or checkout.")
    expires_at: datetime | None
    constraints: list[dict[str, Any]] = Field(description="The open mandate's constraints, as granted.")
    payee: dict[str, Any] | None = None
    payment_amount: dict[str, Any] | None = None
    remaining: dict[str, Any] = Field(description="`uses`, `spent`, `uses_left` (null: unlimited), `budget` (max, "
                                                  "spent, left), `per_purchase`, `max_amount_now` by currency, "
                                                  "`next_use_at`, `usable` and `why_not`.")


class HeldMandates(BaseModel):
    items: list[HeldMandate]


class ReceiptList(Payload):
    limit: int = Field(50, ge=1, le=500)
    before: datetime | None = None


class Receipts(BaseModel):
    items: list[Receipt]


_AP2 = (Protocol.NATIVE, Protocol.AP2)
AP2_TRUST_ADD = register_message("ap2.trust.add", subjects.proto("ap2", "trust.add"), TrustAdd, TrustedIssuer,
                                 protocols=_AP2, permission="mandates:update")
AP2_TRUST_LIST = register_message("ap2.trust.list", subjects.proto("ap2", "trust.list"), TrustList, TrustedIssuers,
                                  protocols=_AP2, permission="mandates:read")
AP2_JWKS = register_message("ap2.jwks", subjects.proto("ap2", "jwks"), JwksGet, Jwks, protocols=_AP2,
                            permission="mandates:keys")
AP2_CHECKOUT_CREATE = register_message("ap2.checkout.create", subjects.proto("ap2", "checkout.create"),
                                       CheckoutCreate, Ap2Checkout, protocols=_AP2, permission="mandates:checkout")
AP2_ACP_CHECKOUT = register_message("ap2.checkout.acp", subjects.proto("ap2", "checkout.acp"), AcpCheckoutSign,
                                    Ap2Checkout, protocols=_AP2, permission="mandates:checkout")
AP2_PRESENT = register_message("ap2.mandate.present", subjects.proto("ap2", "mandate.present"), MandatePresent,
                               Receipt, protocols=_AP2, permission="mandates:present")
AP2_RECEIPT_GET = register_message("ap2.receipt.get", subjects.proto("ap2", "receipt.get"), ReceiptGet, Receipt,
                                   protocols=_AP2, permission="mandates:read")
AP2_GRANT = register_message("ap2.mandate.grant", subjects.proto("ap2", "mandate.grant"), MandateGrant,
                             GrantedMandate, protocols=_AP2, permission="mandates:create")
AP2_CLOSE = register_message("ap2.mandate.close", subjects.proto("ap2", "mandate.close"), MandateClose,
                             ClosedMandate, protocols=_AP2, permission="mandates:sign")
AP2_RELEASE = register_message("ap2.mandate.release", subjects.proto("ap2", "mandate.release"), MandateRelease,
                               ReleasedMandate, protocols=_AP2, permission="mandates:sign")
AP2_REVOKE = register_message("ap2.mandate.revoke", subjects.proto("ap2", "mandate.revoke"), MandateRevoke,
                              RevokedMandate, protocols=_AP2, permission="mandates:update")
AP2_V1_ACCEPT = register_message("ap2.v1.accept", subjects.proto("ap2", "v1.accept"), V1MandateAccept, V1Mandate,
                                 protocols=_AP2, permission="mandates:present")
AP2_MANDATE_LIST = register_message("ap2.mandate.list", subjects.proto("ap2", "mandate.list"), MandateList, Mandates,
                                    protocols=_AP2, permission="mandates:read")
AP2_HELD = register_message("ap2.mandate.held", subjects.proto("ap2", "mandate.held"), HeldList, HeldMandates,
                            protocols=_AP2, permission="mandates:read")
AP2_RECEIPT_LIST = register_message("ap2.receipt.list", subjects.proto("ap2", "receipt.list"), ReceiptList, Receipts,
                                    protocols=_AP2, permission="mandates:read")
