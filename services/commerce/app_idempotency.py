"""The ACP idempotency subscribers (begin, finish), asked by the gateway around each ACP POST; joined in app.py."""

from services.commerce import service_idempotency
from shared.contracts.commerce.idempotency import (
    IDEMPOTENCY_BEGIN,
    IDEMPOTENCY_FINISH,
    IdempotencyBegin,
    IdempotencyFinish,
    IdempotencyFinished,
    IdempotencyStarted,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

idempotency_router = ServiceRouter("commerce")


@idempotency_router.handler(IDEMPOTENCY_BEGIN)
async def begin_idempotent_request(ctx: WorkContext, payload: IdempotencyBegin) -> IdempotencyStarted:
    return await service_idempotency.begin(ctx, payload)


@idempotency_router.handler(IDEMPOTENCY_FINISH)
async def finish_idempotent_request(ctx: WorkContext, payload: IdempotencyFinish) -> IdempotencyFinished:
    return await service_idempotency.finish(ctx, payload)
