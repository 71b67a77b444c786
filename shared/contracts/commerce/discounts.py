"""Discount codes on the bus: an org's codes, applied by ACP checkout (`discounts.codes` of a session).

A discount is a percentage (`percent_off`, 1-100) or a fixed amount (`amount_off`, minor units of
`currency`) off the items it covers (`product_ids`, empty: every item), valid between `starts_at` and
`ends_at`, for an items subtotal of at least `min_subtotal`, at most `max_redemptions` times (counted at
complete, exactly once per completed session). Codes are case-insensitive and unique per org. Checkout
answers each submitted code in `discounts.applied` (ACP `AppliedDiscount`, allocated to the line items) or
`discounts.rejected` (ACP `RejectedDiscount`: `discount_code_invalid | _expired | _minimum_not_met |
_usage_limit_reached | _already_applied | _combination_disallowed | _user_ineligible`). One code applies per
session. Permissions on resource `discounts` (`create`, `update`, `read`, `list`); subjects
`one.commerce.discounts.<verb>`.
"""

from datetime import datetime
from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.errors import Conflict, InvalidRequest, NotFound

Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class DiscountNotFound(NotFound):
    code = "discount_not_found"


class DiscountCodeTaken(Conflict):
    code = "discount_code_taken"


class InvalidDiscount(InvalidRequest):
    code = "invalid_discount"


class DiscountCreate(Payload):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["percentage", "fixed"]
    percent_off: int | None = Field(None, ge=1, le=100, description="For `percentage`: whole percent off.")
    amount_off: int | None = Field(None, gt=0, description="For `fixed`: minor units of `currency` off.")
    currency: str | None = Field(None, pattern=r"^[a-z]{3}$", description="For `fixed` (required): ISO 4217.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_redemptions: int | None = Field(None, ge=1)
    min_subtotal: int = Field(0, ge=0, description="Minimum items subtotal (minor units) of the covered items.")
    product_ids: list[UUID] = Field(default_factory=list, max_length=100, description="Empty: every product.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind == "percentage" and (self.percent_off is None or self.amount_off is not None):
            raise ValueError("a percentage discount has percent_off and no amount_off")
        if self.kind == "fixed" and (self.amount_off is None or self.currency is None or self.percent_off is not None):
            raise ValueError("a fixed discount has amount_off and currency, and no percent_off")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class DiscountChange(Payload):
    name: str | None = Field(None, min_length=1, max_length=200)
    active: bool | None = Field(None, description="False: the code is refused (`discount_code_invalid`) from now.")
    ends_at: datetime | None = None
    max_redemptions: int | None = Field(None, ge=1)


class DiscountUpdate(DiscountChange):
    code: str = Code


class DiscountTarget(Payload):
    code: str = Code


class DiscountQuery(Payload):
    limit: int = Field(100, ge=1, le=500)


class Discount(BaseModel):
    id: UUID
    code: str
    name: str
    kind: Literal["percentage", "fixed"]
    percent_off: int | None = None
    amount_off: int | None = None
    currency: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_redemptions: int | None = None
    times_redeemed: int = 0
    min_subtotal: int = 0
    product_ids: list[UUID] = Field(default_factory=list)
    active: bool = True
    created_at: datetime
    updated_at: datetime


class Discounts(BaseModel):
    discounts: list[Discount]


def _message(verb: str, payload: type[Payload], result: type[BaseModel], permission: str) -> Any:
    return register_message(f"commerce.discounts.{verb}", subjects.command("commerce", f"discounts.{verb}"), payload,
                            result, permission=permission)


DISCOUNT_CREATE = _message("create", DiscountCreate, Discount, "discounts:create")
DISCOUNT_UPDATE = _message("update", DiscountUpdate, Discount, "discounts:update")
DISCOUNT_GET = _message("get", DiscountTarget, Discount, "discounts:read")
DISCOUNT_LIST = _message("list", DiscountQuery, Discounts, "discounts:list")
