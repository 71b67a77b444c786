"""Subscribers for org wallets, agents' budgets and their payments: payload -> service call -> result."""

from services.commerce import service_wallet
from shared.contracts.commerce.wallet import (
    BUDGET_GET,
    BUDGET_SET,
    WALLET_CREATE,
    WALLET_GET,
    WALLET_RECEIPT,
    WALLET_SIGN,
    Budget,
    BudgetQuery,
    BudgetSet,
    Signature,
    Spend,
    Wallet,
    WalletCreate,
    WalletQuery,
    WalletReceipt,
    WalletSign,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

wallet_router = ServiceRouter("commerce")


@wallet_router.handler(WALLET_CREATE)
async def create_wallet(ctx: WorkContext, payload: WalletCreate) -> Wallet:
    return await service_wallet.create_wallet(ctx)


@wallet_router.handler(WALLET_GET)
async def get_wallet(ctx: WorkContext, payload: WalletQuery) -> Wallet:
    return await service_wallet.get_wallet(ctx)


@wallet_router.handler(BUDGET_SET, transactional=False)
async def set_budget(ctx: WorkContext, payload: BudgetSet) -> Budget:
    return await service_wallet.set_budget(ctx, payload)


@wallet_router.handler(BUDGET_GET)
async def get_budget(ctx: WorkContext, payload: BudgetQuery) -> Budget:
    return await service_wallet.get_budget(ctx, payload)


@wallet_router.handler(WALLET_SIGN)
async def sign(ctx: WorkContext, payload: WalletSign) -> Signature:
    return await service_wallet.sign(ctx, payload)


@wallet_router.handler(WALLET_RECEIPT)
async def record_receipt(ctx: WorkContext, payload: WalletReceipt) -> Spend:
    return await service_wallet.record_receipt(ctx, payload)
