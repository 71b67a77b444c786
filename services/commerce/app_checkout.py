"""ACP checkout's subscribers (`one.proto.acp.checkout.*`): payload -> service call -> result; joined in app.py.

Create, update, complete and cancel open their own short transactions (the catalog and the graph are asked
between them, never while one is held); get and list read in the handler's transaction.
"""

from services.commerce import service_checkout
from shared.contracts.commerce.acp import (
    CHECKOUT_CANCEL,
    CHECKOUT_COMPLETE,
    CHECKOUT_CREATE,
    CHECKOUT_GET,
    CHECKOUT_LIST,
    CHECKOUT_UPDATE,
    CheckoutCancel,
    CheckoutComplete,
    CheckoutCreate,
    CheckoutPage,
    CheckoutQuery,
    CheckoutSession,
    CheckoutTarget,
    CheckoutUpdate,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

checkout_router = ServiceRouter("commerce")


@checkout_router.handler(CHECKOUT_CREATE, transactional=False)
async def create(ctx: WorkContext, payload: CheckoutCreate) -> CheckoutSession:
    return await service_checkout.create(ctx, payload)


@checkout_router.handler(CHECKOUT_UPDATE, transactional=False)
async def update(ctx: WorkContext, payload: CheckoutUpdate) -> CheckoutSession:
    return await service_checkout.update(ctx, payload)


@checkout_router.handler(CHECKOUT_COMPLETE, transactional=False)
async def complete(ctx: WorkContext, payload: CheckoutComplete) -> CheckoutSession:
    return await service_checkout.complete(ctx, payload)


@checkout_router.handler(CHECKOUT_CANCEL, transactional=False)
async def cancel(ctx: WorkContext, payload: CheckoutCancel) -> CheckoutSession:
    return await service_checkout.cancel(ctx, payload)


@checkout_router.handler(CHECKOUT_GET)
async def get(ctx: WorkContext, payload: CheckoutTarget) -> CheckoutSession:
    return await service_checkout.get(ctx, payload)


@checkout_router.handler(CHECKOUT_LIST)
async def list_sessions(ctx: WorkContext, payload: CheckoutQuery) -> CheckoutPage:
    return await service_checkout.list_sessions(ctx, payload)
