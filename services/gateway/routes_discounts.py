"""The org's discount codes over HTTP, with its API key: `/v1/discounts` (what `one discounts ...` sends over `ONE_URL`).

A discount is keyed by its code (case-insensitive), so the code is the path's last segment. ACP checkout
applies the codes an agent submits (`discounts.codes`); these routes manage them (`discounts:*`).
"""

from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from shared.contracts.commerce.discounts import (
    DISCOUNT_CREATE,
    DISCOUNT_GET,
    DISCOUNT_LIST,
    DISCOUNT_UPDATE,
    Discount,
    DiscountChange,
    DiscountCreate,
    DiscountQuery,
    Discounts,
)

router = APIRouter(prefix="/v1/discounts", tags=["discounts"])


@router.post("", status_code=201, responses=WRITE)
async def create_discount(body: DiscountCreate, caller: Caller, bus: Bus) -> Discount:
    """A new code: a percentage or a fixed amount off, with its validity, limits and products."""
    return await bus.request(DISCOUNT_CREATE, body, caller)


@router.get("", responses=READ)
async def list_discounts(query: Annotated[DiscountQuery, Query()], caller: Caller, bus: Bus) -> Discounts:
    return await bus.request(DISCOUNT_LIST, query, caller)


@router.get("/{code}", responses=READ)
async def get_discount(code: str, caller: Caller, bus: Bus) -> Discount:
    return await bus.request(DISCOUNT_GET, {"code": code}, caller)


@router.patch("/{code}", responses=WRITE)
async def update_discount(code: str, body: DiscountChange, caller: Caller, bus: Bus) -> Discount:
    """Rename, switch off (`active: false`), end or cap a code."""
    return await bus.request(DISCOUNT_UPDATE, {**body.model_dump(exclude_unset=True), "code": code}, caller)
