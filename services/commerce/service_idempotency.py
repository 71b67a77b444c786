"""ACP idempotency, decided in one transaction per step (contract: shared/contracts/commerce/idempotency.py).

The caller a key belongs to is the envelope's actor (the API key's identity), so two callers of one
org never see each other's answers, and the endpoint is the method and path. The records are not
domain changes (no event): they are the edge's memory of its own answers.
"""

import math

from sqlalchemy.ext.asyncio import AsyncSession

from services.commerce import repository_idempotency as repo
from services.commerce.settings import CommerceSettings
from shared.contracts.commerce.idempotency import (
    IdempotencyBegin,
    IdempotencyConflict,
    IdempotencyFinish,
    IdempotencyFinished,
    IdempotencyInFlight,
    IdempotencyStarted,
)
from shared.kernel.ids import uuid7
from shared.runtime.context import WorkContext

_CLAIM_TRIES = 3
"""A record released (a 5xx) between our claim and our read is claimed again, a few times at most."""


def _scope(ctx: WorkContext, endpoint: str, key: str) -> repo.KeyScope:
    auth = ctx.auth
    return repo.KeyScope(auth.org_id, str(auth.actor_id), endpoint, key)


async def begin(ctx: WorkContext, payload: IdempotencyBegin) -> IdempotencyStarted:
    settings: CommerceSettings = ctx.runtime.settings
    scope = _scope(ctx, payload.endpoint, payload.key)
    assert ctx.session is not None
    for _ in range(_CLAIM_TRIES):
        lock_id = uuid7()
        if await repo.claim(ctx.session, scope, request_hash=payload.request_hash, lock_id=lock_id,
                            lease=settings.commerce_idempotency_lease, ttl=settings.commerce_idempotency_ttl):
            return IdempotencyStarted(outcome="proceed", lock_id=lock_id)
        row = await repo.get(ctx.session, scope)
        if row is None:
            continue
        if row.request_hash != payload.request_hash:
            raise IdempotencyConflict("Idempotency-Key has already been used with a different request body")
        if row.state == "completed":
            return IdempotencyStarted(outcome="replay", status=row.status, headers=row.headers or {}, body=row.body)
        retry_after = max(1, math.ceil((row.locked_until - row.now).total_seconds()))
        raise IdempotencyInFlight("A request with this Idempotency-Key is currently being processed",
                                  {"retry_after": retry_after})
    raise IdempotencyInFlight("A request with this Idempotency-Key is currently being processed", {"retry_after": 1})


async def finish(ctx: WorkContext, payload: IdempotencyFinish) -> IdempotencyFinished:
    scope = _scope(ctx, payload.endpoint, payload.key)
    assert ctx.session is not None
    if payload.status >= 500:
        await repo.release(ctx.session, scope, payload.lock_id)
        return IdempotencyFinished(stored=False)
    stored = await repo.complete(ctx.session, scope, payload.lock_id, status=payload.status, headers=payload.headers,
                                 body=payload.body)
    return IdempotencyFinished(stored=stored)


async def sweep(session: AsyncSession) -> int:
    """Delete expired records of every org (a replica's periodic sweep, in an org-less transaction of its own)."""
    return await repo.sweep_expired(session)
