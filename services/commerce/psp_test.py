"""The built-in test-mode PSP (`test`, the default): ACP Delegate Payment vault tokens, charged once each.

TEST MODE: no card network is involved and no money moves; a `Charge` says `live=False`. It is what
`make run` and the tests use, and the model of what a real PSP adapter must guarantee: a token pays
for its own checkout session only, in its currency, up to its allowance, before it expires, once.
A repeated charge with the same idempotency key (a retried complete) returns the first charge.
"""

import hashlib
from datetime import UTC, datetime
from typing import Any

from services.commerce import repository_payments as vault
from shared.contracts.commerce.payments import Charge, PaymentDeclined
from shared.kernel.ids import uuid7
from shared.runtime.context import WorkContext

TEST_PROVIDER = "test"
DECLINING_INSTRUMENTS = {"pm_card_chargeDeclined": "card_declined",
                         "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
                         "pm_card_chargeDeclinedExpiredCard": "expired"}
"""AP2 payment instruments the test PSP declines, by id (Stripe's test payment methods' names); others pay."""


def _charge_of(row: vault.VaultTokenRow) -> Charge:
    return Charge(id=row.charge_id or "", provider=TEST_PROVIDER, amount=row.charged_amount or 0,
                  currency=row.currency, token=row.id, checkout_session_id=row.checkout_session_id, live=False)


def _refusal(row: vault.VaultTokenRow | None, *, amount: int, currency: str, checkout_session_id: str) -> PaymentDeclined:
    """Why a token that could not be spent was refused, from the row as it is now (the first reason that holds)."""
    if row is None:
        return PaymentDeclined("unknown_token", "no such vault token in this organization")
    if row.charged_at is not None:
        return PaymentDeclined("reused", "the vault token was already charged", {"charge_id": row.charge_id})
    if row.checkout_session_id != checkout_session_id:
        return PaymentDeclined("wrong_session", "the vault token was delegated for another checkout session")
    if row.expires_at <= datetime.now(UTC):
        return PaymentDeclined("expired", "the vault token's allowance has expired",
                               {"expires_at": row.expires_at.isoformat()})
    if row.currency != currency:
        return PaymentDeclined("wrong_currency", f"the allowance is in {row.currency}, the charge in {currency}")
    if amount > row.max_amount:
        return PaymentDeclined("over_allowance", f"{amount} is over the allowance of {row.max_amount}",
                               {"max_amount": row.max_amount, "amount": amount})
    return PaymentDeclined("provider_error", "the vault token could not be charged")


class TestModeProvider:
    """Charges Delegate Payment vault tokens (`vt_...`) stored in `commerce.vault_tokens`; test mode only."""

    __test__ = False  # not a pytest class
    name = TEST_PROVIDER
    live = False
    declines_before_writing = True
    """Its one write is the spend, which either charges or matches no row; a refusal's reason is read afterwards."""

    async def charge(self, ctx: WorkContext, *, token: str, amount: int, currency: str, checkout_session_id: str,
                     idempotency_key: str) -> Charge:
        if ctx.session is None:
            raise RuntimeError("charge() runs in the checkout's transaction")
        org_id, currency = ctx.auth.org_id, currency.lower()
        spent = await vault.spend(ctx.session, org_id, token, amount=amount, currency=currency,
                                  checkout_session_id=checkout_session_id, charge_id=f"ch_test_{uuid7().hex}",
                                  charge_key=idempotency_key)
        if spent is not None:
            return _charge_of(spent)
        row = await vault.get(ctx.session, org_id, token)
        if (row is not None and row.charged_at is not None and row.charge_key == idempotency_key
                and row.checkout_session_id == checkout_session_id and row.charged_amount == amount):
            return _charge_of(row)
        raise _refusal(row, amount=amount, currency=currency, checkout_session_id=checkout_session_id)

    async def charge_mandate(self, ctx: WorkContext, *, instrument: dict[str, Any], amount: int, currency: str,
                             checkout_id: str, idempotency_key: str) -> Charge:
        """Test mode: the instruments of `DECLINING_INSTRUMENTS` are declined, any other is charged (nothing moves).

        The charge id is derived from `idempotency_key`, so a retried attempt names the same charge.
        """
        instrument_id = str(instrument.get("id", ""))
        if instrument_id in DECLINING_INSTRUMENTS:
            raise PaymentDeclined(DECLINING_INSTRUMENTS[instrument_id], f"the test PSP declines {instrument_id}",
                                  {"provider": TEST_PROVIDER, "instrument": instrument_id})
        charge_id = "ch_test_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        return Charge(id=charge_id, provider=TEST_PROVIDER, amount=amount, currency=currency.lower(),
                      token=instrument_id, checkout_session_id=checkout_id, live=False)
