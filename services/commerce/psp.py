"""The payment-provider interface checkout's `complete` charges through, and the configured provider.

`PaymentProvider.charge(...)` is called inside commerce's work for one checkout session (and
`charge_mandate(...)` for an AP2 checkout paid by a verified payment mandate): it either
returns a `Charge` or raises `PaymentDeclined(reason)` — it never returns a failed charge, and a
given token pays at most once (the provider's own guarantee: the test PSP consumes its vault token
with one conditional UPDATE in the caller's transaction, so a rolled-back complete un-spends it).

Adding a provider (Stripe, Adyen, ...): write a class with `name` and `charge` below this module
(e.g. `psp_stripe.py`) that maps the provider's decline codes onto `DeclineReason`, passes
`idempotency_key` to the provider's own idempotency header, says whether it `declines_before_writing`,
and register it in `PROVIDERS`; the org's deployment picks it with `ONE_COMMERCE_PSP=<name>`. Checkout
code never names a provider.
"""

from collections.abc import Callable
from typing import Any, Protocol

from services.commerce.settings import CommerceSettings
from shared.contracts.commerce.payments import Charge, PaymentDeclined
from shared.runtime.context import WorkContext

__all__ = ["PROVIDERS", "Charge", "PaymentDeclined", "PaymentProvider", "provider", "providers"]


class PaymentProvider(Protocol):
    """A PSP: charges a credential token for one checkout session, exactly once."""

    name: str
    live: bool
    declines_before_writing: bool
    """True only if `charge` raises `PaymentDeclined` before running any statement in `ctx.session` that wrote or
    failed: checkout then records the decline in the same transaction as is. False (the safe answer for a provider
    that writes, e.g. a local ledger row, before it knows the outcome): checkout runs `charge` in a savepoint, rolled
    back on a decline, at the cost of two more statements per charge."""

    async def charge(self, ctx: WorkContext, *, token: str, amount: int, currency: str, checkout_session_id: str,
                     idempotency_key: str) -> Charge:
        """Charge `amount` minor units of `currency` (lower case) to `token` for `checkout_session_id`.

        `ctx` has the org's open transaction (`ctx.session`). Raises `PaymentDeclined` with a reason
        (`over_allowance`, `expired`, `reused`, `wrong_session`, `wrong_currency`, `unknown_token`, ...).
        `idempotency_key` names this attempt: the same key charges at most once.
        """
        ...

    async def charge_mandate(self, ctx: WorkContext, *, instrument: dict[str, Any], amount: int, currency: str,
                             checkout_id: str, idempotency_key: str) -> Charge:
        """Charge an AP2 payment mandate's `payment_instrument` (types/payment_instrument.json) for a checkout.

        Called by the merchant after the mandate chain verified and before the receipt is signed, in the
        checkout's transaction. Raises `PaymentDeclined` (`card_declined`, `insufficient_funds`, `expired`,
        ...) having written nothing in `ctx.session` (the presentation records the refusal in the same transaction,
        with no savepoint to roll back to); the same `idempotency_key` charges at most once.
        """
        ...


def _test_provider(settings: CommerceSettings) -> PaymentProvider:
    from services.commerce.psp_test import TestModeProvider

    return TestModeProvider()


PROVIDERS: dict[str, Callable[[CommerceSettings], PaymentProvider]] = {"test": _test_provider}
"""Provider factories by the name `ONE_COMMERCE_PSP` selects."""


def provider(settings: CommerceSettings) -> PaymentProvider:
    """The configured provider (`test` unless `ONE_COMMERCE_PSP` names another)."""
    name = settings.commerce_psp
    try:
        return PROVIDERS[name](settings)
    except KeyError:
        raise ValueError(f"ONE_COMMERCE_PSP={name!r}: no such payment provider (known: {sorted(PROVIDERS)})") from None


providers = provider
"""The same function under the name the ACP briefs use."""
