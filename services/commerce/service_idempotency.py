"""ACP idempotency, decided in one transaction per step (contract: shared/contracts/commerce/idempotency.py).

The caller a key belongs to is the envelope's actor (the API key's identity), so two callers of one
org never see each other's answers, and the endpoint is the method and path. The records are not
domain changes (no event): they are the edge's memory of its own answers.
"""

import math
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from services.commerce import repository_idempotency as repo
from services.commerce.settings import CommerceSettings
from shared.contracts.commerce.idempotency import (
    JSON_HEADERS,
    IdempotencyBegin,
    IdempotencyClaim,
    IdempotencyConflict,
    IdempotencyFinish,
    IdempotencyFinished,
    IdempotencyInFlight,
    IdempotencyStarted,
    StoredAnswer,
    answer_text,
)
from shared.kernel.ids import uuid7
from shared.runtime.context import WorkContext
from shared.runtime.outbox import OutboxMessage

_CLAIM_TRIES = 3
"""A record released (a 5xx) between our claim and our read is claimed again, a few times at most."""


def _scope(ctx: WorkContext, endpoint: str, key: str) -> repo.KeyScope:
    auth = ctx.auth
    return repo.KeyScope(auth.org_id, str(auth.actor_id), endpoint, key)


async def begin(ctx: WorkContext, payload: IdempotencyBegin) -> IdempotencyStarted:
    assert ctx.session is not None
    return await _claim(ctx, payload.endpoint, payload.key, payload.request_hash, payload.lock_id)


async def _claim(ctx: WorkContext, endpoint: str, key: str, request_hash: str, lock_id: UUID | None
                 ) -> IdempotencyStarted:
    """Claim the key in `ctx`'s transaction: `proceed`, `replay`, or IdempotencyConflict / IdempotencyInFlight."""
    settings: CommerceSettings = ctx.runtime.settings
    scope = _scope(ctx, endpoint, key)
    assert ctx.session is not None
    for _ in range(_CLAIM_TRIES):
        lock_id = lock_id or uuid7()
        if await repo.claim(ctx.session, scope, request_hash=request_hash, lock_id=lock_id,
                            lease=settings.commerce_idempotency_lease, ttl=settings.commerce_idempotency_ttl):
            return IdempotencyStarted(outcome="proceed", lock_id=lock_id)
        row = await repo.get(ctx.session, scope)
        if row is None:
            continue
        if row.request_hash != request_hash:
            raise IdempotencyConflict("Idempotency-Key has already been used with a different request body")
        if row.state == "completed":
            return IdempotencyStarted(outcome="replay", status=row.status, headers=row.headers or {}, body=row.body)
        retry_after = max(1, math.ceil((row.locked_until - row.now).total_seconds()))
        raise IdempotencyInFlight("A request with this Idempotency-Key is currently being processed",
                                  {"retry_after": retry_after})
    raise IdempotencyInFlight("A request with this Idempotency-Key is currently being processed", {"retry_after": 1})


async def claim(ctx: WorkContext, claim: IdempotencyClaim | None) -> StoredAnswer | None:
    """The request's own key claimed in `ctx`'s open transaction: None to proceed (or no key), the stored answer
    for a replay; IdempotencyConflict / IdempotencyInFlight as `begin`. The caller stores its answer (`store`) in
    the transaction that does the work, so the key is never seen in flight by a request that waits for it."""
    if claim is None:
        return None
    started = await _claim(ctx, claim.endpoint, claim.key, claim.request_hash, claim.lock_id)
    if started.outcome == "proceed":
        return None
    return StoredAnswer(status=started.status or 200, headers=started.headers, body=started.body or "")


async def store(ctx: WorkContext, claim: IdempotencyClaim | None, body: Any,
                staged: Sequence[OutboxMessage] = ()) -> bool:
    """Store a success answer (`claim.status`, `body` as the edge renders it) under the claim, in `ctx`'s open
    transaction, with the step's events (`staged`, from `ctx.event_messages`) in the same statement; False without a
    claim (the events staged alone) or when the key was lost to a takeover."""
    assert ctx.session is not None
    if claim is None:
        await ctx.runtime.outbox.add_many(ctx.session, staged)
        return False
    return await repo.complete(ctx.session, _scope(ctx, claim.endpoint, claim.key), claim.lock_id,
                               status=claim.status, headers=JSON_HEADERS, body=answer_text(body),
                               outbox=ctx.runtime.outbox, staged=staged)


async def finish(ctx: WorkContext, payload: IdempotencyFinish) -> IdempotencyFinished:
    scope = _scope(ctx, payload.endpoint, payload.key)
    assert ctx.session is not None
    if payload.status >= 500:
        await repo.release(ctx.session, scope, payload.lock_id)
        return IdempotencyFinished(stored=False)
    stored = await repo.complete(ctx.session, scope, payload.lock_id, status=payload.status, headers=payload.headers,
                                 body=payload.body)
    return IdempotencyFinished(stored=stored)


async def sweep(session: AsyncConnection) -> int:
    """Delete expired records of every org (a replica's periodic sweep, in an org-less transaction of its own)."""
    return await repo.sweep_expired(session)
