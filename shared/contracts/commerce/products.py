"""The catalog: `product` things carrying what a checkout needs, written and read through commerce.

A product is a graph thing of type `product`; commerce checks its selling properties before the graph
stores them, so a checkout never meets a product it cannot price. The properties (camelCase, as the
ontology writes them): `price` (integer minor units of `currency`, e.g. 1999 = 19.99 usd), `currency`
(ISO 4217, lower case as ACP writes it), `availability` (`status` as ACP's `availability_status`,
`quantity` in stock or none = not counted), `fulfillmentOptions` (how it can be delivered, each with its
own price), `taxCategory` (a key of the deployment's tax rates: `ONE_COMMERCE_TAX_RATES`),
`maxQuantityPerOrder`, `ageRestricted` (a checkout holding it needs the buyer on the merchant's site:
ACP's `requires_escalation`), `sku`, `description`, `images`, `protocol`.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.errors import InvalidRequest, NotFound

Currency = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]
OptionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
AvailabilityStatus = Literal["in_stock", "low_stock", "out_of_stock", "backorder", "pre_order"]
SELLABLE = ("in_stock", "low_stock", "backorder", "pre_order")
"""Availability statuses a checkout may sell (a counted `quantity` still caps it)."""


ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                          "xaf", "xof", "xpf"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def exponent(currency: str) -> int:
    """Digits after the decimal point of `currency` (ISO 4217): 2 unless listed above (minor units = 10^-exponent)."""
    currency = currency.lower()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


class ProductNotFound(NotFound):
    code = "product_not_found"


class InvalidProduct(InvalidRequest):
    """The product's selling properties are not usable (e.g. a thing of type `product` without a price)."""

    code = "invalid_product"


class Availability(BaseModel):
    status: AvailabilityStatus = "in_stock"
    quantity: int | None = Field(None, ge=0, description="Units in stock; none = not counted.")


class FulfillmentOption(BaseModel):
    """One way to deliver the product: `shipping` needs the buyer's address, `digital` does not."""

    id: OptionId
    type: Literal["shipping", "digital"]
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    amount: int = Field(0, ge=0, description="Price of this option for the whole checkout, minor units.")
    carrier: str | None = Field(None, max_length=100)


DIGITAL = FulfillmentOption(id="digital", type="digital", title="Digital delivery")


class ProductFields(Payload):
    """The selling properties, as a caller sets them (snake_case on the wire, camelCase on the thing)."""

    price: int | None = Field(None, ge=0, le=10**12, description="Unit price in minor units of `currency`.")
    currency: Currency | None = None
    availability: Availability | None = None
    fulfillment_options: list[FulfillmentOption] | None = Field(None, min_length=1, max_length=20)
    tax_category: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] | None = None
    max_quantity_per_order: int | None = Field(None, ge=1)
    age_restricted: bool | None = None
    sku: Annotated[str, StringConstraints(max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    images: list[Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]] | None = Field(
        None, max_length=20)


class ProductCreate(ProductFields):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    price: int = Field(ge=0, le=10**12, description="Unit price in minor units of `currency`.")
    currency: Currency = "usd"
    status: Literal["active", "draft", "inactive"] = Field("active", description="Only an active product is sold.")


class ProductUpdate(ProductFields):
    id: UUID
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    status: Literal["active", "draft", "inactive"] | None = None


class ProductTarget(Payload):
    id: UUID


class ProductQuery(Payload):
    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class Product(BaseModel):
    id: UUID
    name: str
    status: str
    price: int
    currency: str
    availability: Availability
    fulfillment_options: list[FulfillmentOption]
    tax_category: str
    max_quantity_per_order: int | None = None
    age_restricted: bool = False
    sku: str | None = None
    description: str | None = None
    images: list[str] = Field(default_factory=list)
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def sellable(self) -> bool:
        return self.status in ("active", "published")


class Products(BaseModel):
    products: list[Product]
    next_cursor: UUID | None = None


def _message(verb: str, payload: type[Payload], result: type[BaseModel], permission: str) -> Any:
    return register_message(f"commerce.products.{verb}", subjects.command("commerce", f"products.{verb}"), payload,
                            result, permission=permission)


PRODUCT_CREATE = _message("create", ProductCreate, Product, "products:create")
PRODUCT_UPDATE = _message("update", ProductUpdate, Product, "products:update")
PRODUCT_GET = _message("get", ProductTarget, Product, "products:read")
PRODUCT_LIST = _message("list", ProductQuery, Products, "products:list")
