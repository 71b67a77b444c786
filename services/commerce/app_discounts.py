"""Discount code subscribers (`one.commerce.discounts.*`): payload -> service call -> result; joined in app.py."""

from services.commerce import service_discounts
from shared.contracts.commerce.discounts import (
    DISCOUNT_CREATE,
    DISCOUNT_GET,
    DISCOUNT_LIST,
    DISCOUNT_UPDATE,
    Discount,
    DiscountCreate,
    DiscountQuery,
    Discounts,
    DiscountTarget,
    DiscountUpdate,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

discounts_router = ServiceRouter("commerce")


@discounts_router.handler(DISCOUNT_CREATE)
async def create_discount(ctx: WorkContext, payload: DiscountCreate) -> Discount:
    return await service_discounts.create(ctx, payload)


@discounts_router.handler(DISCOUNT_UPDATE)
async def update_discount(ctx: WorkContext, payload: DiscountUpdate) -> Discount:
    return await service_discounts.update(ctx, payload)


@discounts_router.handler(DISCOUNT_GET)
async def get_discount(ctx: WorkContext, payload: DiscountTarget) -> Discount:
    return await service_discounts.get(ctx, payload)


@discounts_router.handler(DISCOUNT_LIST)
async def list_discounts(ctx: WorkContext, payload: DiscountQuery) -> Discounts:
    return await service_discounts.list_discounts(ctx, payload)
