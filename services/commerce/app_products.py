"""The catalog's subscribers (`commerce.products.*`): payload -> service call -> result; joined in app.py."""

from services.commerce import service_products
from shared.contracts.commerce.products import (
    PRODUCT_CREATE,
    PRODUCT_GET,
    PRODUCT_LIST,
    PRODUCT_UPDATE,
    Product,
    ProductCreate,
    ProductQuery,
    Products,
    ProductTarget,
    ProductUpdate,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

products_router = ServiceRouter("commerce")


@products_router.handler(PRODUCT_CREATE, transactional=False)
async def create_product(ctx: WorkContext, payload: ProductCreate) -> Product:
    return await service_products.create_product(ctx, payload)


@products_router.handler(PRODUCT_UPDATE, transactional=False)
async def update_product(ctx: WorkContext, payload: ProductUpdate) -> Product:
    return await service_products.update_product(ctx, payload)


@products_router.handler(PRODUCT_GET, transactional=False)
async def get_product(ctx: WorkContext, payload: ProductTarget) -> Product:
    return await service_products.get_product(ctx, payload)


@products_router.handler(PRODUCT_LIST, transactional=False)
async def list_products(ctx: WorkContext, payload: ProductQuery) -> Products:
    return await service_products.list_products(ctx, payload)
