"""Discount codes as org data: create, update, read, list (contract: shared/contracts/commerce/discounts.py).

Each change is RBAC-checked (`discounts:*`) and logged as a `commerce_event` (`discount_created` /
`discount_updated`) in its own transaction. How a code prices a session is checkout_rules.py (pure);
its redemption, counted once at complete, is service_checkout.py (`repository_discounts.redeem`).
"""

from typing import Any

from services.commerce import repository_discounts as repo
from shared.contracts.commerce.discounts import (
    Discount,
    DiscountCodeTaken,
    DiscountCreate,
    DiscountNotFound,
    DiscountQuery,
    Discounts,
    DiscountTarget,
    DiscountUpdate,
)
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


async def _event(ctx: WorkContext, event: str, row: repo.DiscountRow) -> None:
    await ctx.emit(EventType.COMMERCE_EVENT, target_id=row["id"], target_type="discount", metadata={
        "protocol": "acp", "eventType": event, "discountId": str(row["id"]), "code": row["code"],
        "kind": row["kind"], "active": row["active"]})


async def create(ctx: WorkContext, payload: DiscountCreate) -> Discount:
    require(ctx.auth, "discounts", "create")
    assert ctx.session is not None
    values: dict[str, Any] = {**payload.model_dump(), "id": uuid7(), "org_id": ctx.auth.org_id,
                              "created_by": ctx.auth.actor_id,
                              "product_ids": [str(p) for p in payload.product_ids]}
    row = await repo.insert(ctx.session, values)
    if row is None:
        raise DiscountCodeTaken(f"the discount code {payload.code!r} exists", {"code": payload.code})
    await _event(ctx, "discount_created", row)
    return Discount.model_validate(row)


async def update(ctx: WorkContext, payload: DiscountUpdate) -> Discount:
    require(ctx.auth, "discounts", "update")
    assert ctx.session is not None
    changes = payload.model_dump(exclude_unset=True, exclude={"code"})
    row = await repo.update(ctx.session, ctx.auth.org_id, payload.code, changes)
    if row is None:
        raise DiscountNotFound(f"no discount code {payload.code!r}", {"code": payload.code})
    await _event(ctx, "discount_updated", row)
    return Discount.model_validate(row)


async def get(ctx: WorkContext, payload: DiscountTarget) -> Discount:
    require(ctx.auth, "discounts", "read")
    assert ctx.session is not None
    row = (await repo.by_codes(ctx.session, ctx.auth.org_id, [payload.code])).get(payload.code.lower())
    if row is None:
        raise DiscountNotFound(f"no discount code {payload.code!r}", {"code": payload.code})
    return Discount.model_validate(row)


async def list_discounts(ctx: WorkContext, payload: DiscountQuery) -> Discounts:
    require(ctx.auth, "discounts", "list")
    assert ctx.session is not None
    return Discounts(discounts=[Discount.model_validate(r) for r in await repo.page(ctx.session, ctx.auth.org_id,
                                                                                     payload.limit)])
