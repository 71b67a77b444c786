"""AP2 V1 (`ap2` 0.1.x) mandates, read structurally and mapped onto what the platform records of a mandate.

V1 has three messages (the official `ap2.models.mandate`, A2A data keys `ap2.mandates.<Type>`):
`IntentMandate` (the user's intent in natural language, merchants, SKUs, an expiry: no signature at
all), `CartMandate` (the cart's contents, with an optional `merchant_authorization` JWT over them) and
`PaymentMandate` (the payment's contents, with an optional `user_authorization` SD-JWT presentation).
They are mapped to `mandateType: intent` (IntentMandate) or `cart` (CartMandate, and PaymentMandate,
which pays a cart), and marked `signed: false` unless the platform could verify a signature — which
is only the case for a CartMandate whose `merchant_authorization` this very merchant signed (V1
defines no trust list for a user's credential, so a `user_authorization` is kept as present, not
verified). A V1 message never authorizes a payment here: it is recorded, evented and answered.
"""

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.commerce.ap2 import credentials
from services.commerce.ap2.constraints import refuse

V1Type = Literal["IntentMandate", "CartMandate", "PaymentMandate"]
DATA_KEY_PREFIX = "ap2.mandates."
MANDATE_TYPES: dict[str, str] = {"IntentMandate": "intent", "CartMandate": "cart", "PaymentMandate": "cart"}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Amount(_Open):
    currency: str = Field(min_length=3, max_length=3)
    value: float


class PaymentItem(_Open):
    label: str
    amount: Amount


class Details(_Open):
    id: str
    display_items: list[PaymentItem]
    total: PaymentItem


class PaymentRequest(_Open):
    method_data: list[dict[str, Any]]
    details: Details


class IntentMandate(_Open):
    natural_language_description: str
    intent_expiry: str
    user_cart_confirmation_required: bool = True
    merchants: list[str] | None = None
    skus: list[str] | None = None
    requires_refundability: bool | None = False


class CartContents(_Open):
    id: str
    user_cart_confirmation_required: bool
    payment_request: PaymentRequest
    cart_expiry: str
    merchant_name: str


class CartMandate(_Open):
    contents: CartContents
    merchant_authorization: str | None = None


class PaymentMandateContents(_Open):
    payment_mandate_id: str
    payment_details_id: str
    payment_details_total: PaymentItem
    payment_response: dict[str, Any]
    merchant_agent: str
    timestamp: str | None = None


class PaymentMandate(_Open):
    payment_mandate_contents: PaymentMandateContents
    user_authorization: str | None = None


MODELS: dict[str, type[BaseModel]] = {"IntentMandate": IntentMandate, "CartMandate": CartMandate,
                                      "PaymentMandate": PaymentMandate}


def unwrap(mandate: dict[str, Any], declared: str | None) -> tuple[str, dict[str, Any]]:
    """(its V1 type, the message): `declared`, or the A2A data key `ap2.mandates.<Type>` wrapping it."""
    if declared is None and len(mandate) == 1:
        [(key, value)] = mandate.items()
        if key.startswith(DATA_KEY_PREFIX) and isinstance(value, dict):
            declared, mandate = key.removeprefix(DATA_KEY_PREFIX), value
    if declared not in MODELS:
        raise refuse("malformed", "a V1 mandate is an IntentMandate, a CartMandate or a PaymentMandate "
                     "(name it, or send it under its A2A data key ap2.mandates.<Type>)")
    return declared, mandate


def _expiry(text: str, now: float) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise refuse("invalid_mandate", "the expiry is not ISO 8601", expiry=text) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _item(item: PaymentItem) -> dict[str, Any]:
    return {"label": item.label, "value": item.amount.value, "currency": item.amount.currency.upper()}


def read(v1_type: str, message: dict[str, Any], now: float) -> tuple[BaseModel, dict[str, Any]]:
    """(the parsed message, its mapping in the `mandate` thing's terms: `intent` {...} or `items`, `total` (major
    units) and `currency`); a `MandateRefused` (`invalid_mandate`, `expired`) if it is not one."""
    try:
        parsed = MODELS[v1_type].model_validate(message)
    except ValidationError as exc:
        problems = [f"{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]]
        raise refuse("invalid_mandate", f"not a V1 {v1_type}", errors=problems) from None
    mapped: dict[str, Any] = {"v1Type": v1_type, "mandateType": MANDATE_TYPES[v1_type], "version": 1}
    expiry = None
    if isinstance(parsed, IntentMandate):
        mapped["intent"] = {"description": parsed.natural_language_description, "merchants": parsed.merchants,
                            "skus": parsed.skus, "autoExecute": not parsed.user_cart_confirmation_required,
                            "requiresRefundability": bool(parsed.requires_refundability)}
        mapped["expiresAt"] = parsed.intent_expiry
        expiry = _expiry(parsed.intent_expiry, now)
    elif isinstance(parsed, CartMandate):
        details = parsed.contents.payment_request.details
        mapped |= {"cartId": parsed.contents.id, "merchantName": parsed.contents.merchant_name,
                   "items": [_item(item) for item in details.display_items], "total": details.total.amount.value,
                   "currency": details.total.amount.currency.upper(), "expiresAt": parsed.contents.cart_expiry}
        expiry = _expiry(parsed.contents.cart_expiry, now)
    else:
        assert isinstance(parsed, PaymentMandate)
        contents = parsed.payment_mandate_contents
        mapped |= {"paymentMandateId": contents.payment_mandate_id, "cartId": contents.payment_details_id,
                   "merchantAgent": contents.merchant_agent, "total": contents.payment_details_total.amount.value,
                   "currency": contents.payment_details_total.amount.currency.upper()}
    if expiry is not None and expiry < now:
        raise refuse("expired", f"the {v1_type} has expired")
    return parsed, mapped


def signature_present(parsed: BaseModel) -> bool:
    return bool(getattr(parsed, "merchant_authorization", None) or getattr(parsed, "user_authorization", None))


def stored_claims(parsed: BaseModel) -> dict[str, Any]:
    """What is kept of the message: all of it but a presentation of the user's credential."""
    return parsed.model_dump(mode="json", exclude={"user_authorization"}, exclude_none=True)


def credential_hash(message: dict[str, Any]) -> str:
    return credentials.digest(json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=True))


def merchant_signed(parsed: BaseModel, merchant_jwks: dict[str, Any], merchant_id: str) -> bool:
    """True when a CartMandate's `merchant_authorization` verifies with this merchant's keys and names it."""
    token = getattr(parsed, "merchant_authorization", None)
    if not isinstance(parsed, CartMandate) or not token:
        return False
    try:
        claims = credentials.verify_jwt(token, merchant_jwks)
    except Exception:  # any token that does not verify, however it fails
        return False
    return claims.get("iss") == merchant_id
