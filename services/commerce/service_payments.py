"""ACP Delegate Payment: vault a card credential behind an allowance, for the test-mode PSP to charge once.

The card number and CVC are checked (check digit, expiry) and dropped: only the display fields the
agent platform sent (brand, last4, funding type, IIN) are kept. An allowance already expired is
accepted (the token simply can never pay), as a real vault would; the charge refuses it.
"""

from datetime import UTC, datetime

from services.commerce import repository_payments as vault
from services.commerce import service_idempotency as idempotency
from services.commerce.psp_test import TEST_PROVIDER
from shared.contracts.commerce.payments import (
    DelegatedCard,
    DelegatePaymentCreate,
    DelegatePaymentCreated,
    DelegationRefused,
    VaultToken,
    VaultTokenQuery,
)
from shared.kernel.envelope import Protocol
from shared.kernel.errors import NotFound
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology.types import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_DISPLAY = ("card_number_type", "display_brand", "display_last4", "display_card_funding_type", "iin")


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) != len(number) or not 12 <= len(digits) <= 19:
        return False
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def check_card(card: DelegatedCard, today: datetime) -> None:
    """Refuse a card the vault could never charge: a bad number (FPAN check digit) or an expiry in the past."""
    if card.card_number_type == "fpan" and not _luhn_ok(card.number):
        raise DelegationRefused("the card number is not valid", {"acp_code": "invalid_card",
                                                                 "param": "$.payment_method.number"})
    if card.exp_month is not None and (not card.exp_month.isdigit() or not 1 <= int(card.exp_month) <= 12):
        raise DelegationRefused("invalid card expiration month", {"acp_code": "invalid_card",
                                                                  "param": "$.payment_method.exp_month"})
    if card.exp_year is not None:
        if not card.exp_year.isdigit():
            raise DelegationRefused("invalid card expiration year", {"acp_code": "invalid_card",
                                                                     "param": "$.payment_method.exp_year"})
        year = int(card.exp_year) + (2000 if len(card.exp_year) == 2 else 0)
        month = int(card.exp_month) if card.exp_month else 12
        if (year, month) < (today.year, today.month):
            raise DelegationRefused("the card has expired", {"acp_code": "invalid_card",
                                                             "param": "$.payment_method.exp_year"})


def _display(card: DelegatedCard) -> dict[str, str]:
    shown = {name: value for name in _DISPLAY if isinstance(value := getattr(card, name), str)}
    shown.setdefault("display_last4", card.number[-4:])
    return shown


async def delegate(ctx: WorkContext, payload: DelegatePaymentCreate) -> DelegatePaymentCreated:
    auth = ctx.auth
    require(auth, "acp", "delegate_payment")
    now = datetime.now(UTC)
    check_card(payload.payment_method, now)
    allowance = payload.allowance
    assert ctx.session is not None
    if replay := await idempotency.claim(ctx, payload.idempotency):
        return DelegatePaymentCreated(response={}, replay=replay)
    row = await vault.insert(ctx.session, vault.NewVaultToken(
        id=f"vt_{uuid7().hex}", org_id=auth.org_id, provider=TEST_PROVIDER, reason=allowance.reason,
        max_amount=allowance.max_amount, currency=allowance.currency,
        checkout_session_id=allowance.checkout_session_id, merchant_id=allowance.merchant_id,
        expires_at=allowance.expires_at, display=_display(payload.payment_method), metadata=payload.metadata,
        created_by=auth.actor_id))
    delegated = ctx.event_messages([(EventType.COMMERCE_EVENT, EventPayload(metadata={
        "protocol": "acp", "eventType": "payment_delegated", "provider": TEST_PROVIDER, "token": row.id,
        "checkoutSessionId": row.checkout_session_id, "maxAmount": row.max_amount, "currency": row.currency,
    }))], protocol=Protocol.ACP)
    metadata = {**payload.metadata, "merchant_id": row.merchant_id, "psp": TEST_PROVIDER, "test_mode": "true"}
    created = row.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    response = {"id": row.id, "created": created, "metadata": metadata}
    stored = await idempotency.store(ctx, payload.idempotency, response, delegated)  # the event staged with it
    return DelegatePaymentCreated(response=response, stored=stored)


async def vault_token(ctx: WorkContext, payload: VaultTokenQuery) -> VaultToken:
    require(ctx.auth, "acp", "read")
    assert ctx.session is not None
    row = await vault.get(ctx.session, ctx.auth.org_id, payload.token)
    if row is None:
        raise NotFound("no such vault token", {"token": payload.token})
    return VaultToken(id=row.id, provider=row.provider, max_amount=row.max_amount, currency=row.currency,
                      checkout_session_id=row.checkout_session_id, merchant_id=row.merchant_id,
                      expires_at=row.expires_at, reason=row.reason, display=row.display, charged_at=row.charged_at,
                      charge_id=row.charge_id, charged_amount=row.charged_amount, created_at=row.created_at)
