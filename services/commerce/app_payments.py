"""The Delegate Payment subscribers (vault a credential, read a token); joined to the service's router in app.py."""

from services.commerce import service_payments
from shared.contracts.commerce.payments import (
    DELEGATE_PAYMENT,
    VAULT_TOKEN_GET,
    DelegatePaymentCreate,
    DelegatePaymentCreated,
    VaultToken,
    VaultTokenQuery,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

payments_router = ServiceRouter("commerce")


@payments_router.handler(DELEGATE_PAYMENT)
async def delegate_payment(ctx: WorkContext, payload: DelegatePaymentCreate) -> DelegatePaymentCreated:
    return await service_payments.delegate(ctx, payload)


@payments_router.handler(VAULT_TOKEN_GET)
async def get_vault_token(ctx: WorkContext, payload: VaultTokenQuery) -> VaultToken:
    return await service_payments.vault_token(ctx, payload)
