"""Subscribers of x402's facilitator and the local chain: payload -> service call -> result.

None is transactional: a verify or settle waits on the chain, and opens its short transactions itself.
"""

from services.commerce import service_x402_facilitator as service
from shared.contracts.commerce.facilitator import (
    CHAIN_BALANCE,
    CHAIN_FUND,
    X402_SETTLE,
    X402_SUPPORTED,
    X402_VERIFY,
    ChainBalance,
    ChainBalanceQuery,
    ChainFund,
    FacilitatorRequest,
    SettleResult,
    Supported,
    SupportedQuery,
    VerifyResult,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

x402_facilitator_router = ServiceRouter("commerce")


@x402_facilitator_router.handler(X402_VERIFY, transactional=False)
async def verify(ctx: WorkContext, payload: FacilitatorRequest) -> VerifyResult:
    return await service.verify(ctx, payload)


@x402_facilitator_router.handler(X402_SETTLE, transactional=False)
async def settle(ctx: WorkContext, payload: FacilitatorRequest) -> SettleResult:
    return await service.settle(ctx, payload)


@x402_facilitator_router.handler(X402_SUPPORTED, transactional=False)
async def supported(ctx: WorkContext, _: SupportedQuery) -> Supported:
    return await service.supported(ctx)


@x402_facilitator_router.handler(CHAIN_FUND, transactional=False)
async def fund(ctx: WorkContext, payload: ChainFund) -> ChainBalance:
    return await service.fund(ctx, payload)


@x402_facilitator_router.handler(CHAIN_BALANCE, transactional=False)
async def balance(ctx: WorkContext, payload: ChainBalanceQuery) -> ChainBalance:
    return await service.balance(ctx, payload)
