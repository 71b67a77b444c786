"""Subscribers for x402 prices and payment requests: payload -> service call -> result.

Setting a price may ask tenancy for the org's slug first, so it opens its transaction late; resolving
reads in the seller's transaction (the request carries no org), so neither is transactional here.
"""

from services.commerce import service_x402_prices as prices
from shared.contracts.commerce.x402 import (
    X402_PRICE_DELETE,
    X402_PRICE_LIST,
    X402_PRICE_RESOLVE,
    X402_PRICE_SET,
    X402_REQUESTED,
    PaymentRequested,
    Price,
    PriceQuery,
    PriceRemoved,
    PriceResolve,
    Prices,
    PriceSet,
    PriceTarget,
    Recorded,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

x402_prices_router = ServiceRouter("commerce")


@x402_prices_router.handler(X402_PRICE_SET, transactional=False)
async def set_price(ctx: WorkContext, payload: PriceSet) -> Price:
    return await prices.set_price(ctx, payload)


@x402_prices_router.handler(X402_PRICE_LIST)
async def list_prices(ctx: WorkContext, payload: PriceQuery) -> Prices:
    return await prices.list_prices(ctx, payload)


@x402_prices_router.handler(X402_PRICE_DELETE)
async def delete_price(ctx: WorkContext, payload: PriceTarget) -> PriceRemoved:
    return await prices.delete_price(ctx, payload)


@x402_prices_router.handler(X402_PRICE_RESOLVE, transactional=False)
async def resolve_price(ctx: WorkContext, payload: PriceResolve) -> Price:
    return await prices.resolve_price(ctx, payload)


@x402_prices_router.handler(X402_REQUESTED)
async def record_requested(ctx: WorkContext, payload: PaymentRequested) -> Recorded:
    return await prices.record_requested(ctx, payload)
