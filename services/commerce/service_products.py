"""The catalog: products are graph things; commerce checks their selling properties and reads them back typed.

Writes go to the graph as the caller (its `things:*` rights apply there too, and the graph logs
`thing_created` / `thing_updated`); commerce adds its own `products:*` permission in front. A checkout
reads the same things through `load_products`, so a line item's price is always the catalog's.
"""

import time
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from shared.contracts.commerce.products import (
    DIGITAL,
    Availability,
    FulfillmentOption,
    InvalidProduct,
    Product,
    ProductCreate,
    ProductFields,
    ProductNotFound,
    ProductQuery,
    Products,
    ProductTarget,
    ProductUpdate,
)
from shared.contracts.graph import THING_CREATE, THING_GET, THING_QUERY, THING_UPDATE, Thing
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import NotFound
from shared.kernel.ontology import ThingType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_PROPERTY_NAMES = {
    "price": "price", "currency": "currency", "availability": "availability",
    "fulfillment_options": "fulfillmentOptions", "tax_category": "taxCategory",
    "max_quantity_per_order": "maxQuantityPerOrder", "age_restricted": "ageRestricted", "sku": "sku",
    "description": "description", "images": "images",
}
"""Payload field -> the thing's property key (the ontology's camelCase)."""

Catalog = dict[UUID, Product | None]
"""Products by id, as a checkout reads them (None: unknown, or not a product)."""


def _properties(fields: ProductFields) -> dict[str, Any]:
    given = fields.model_dump(mode="json", exclude_unset=True, include=set(_PROPERTY_NAMES))
    return {_PROPERTY_NAMES[name]: value for name, value in given.items()}


def product_from_thing(thing: Thing) -> Product:
    """The typed product a thing stands for; `InvalidProduct` when its selling properties do not hold."""
    if thing.type != ThingType.PRODUCT:
        raise ProductNotFound(f"no product {thing.id}", {"id": str(thing.id)})
    p = thing.properties
    try:
        return Product(
            id=thing.id, name=thing.name, status=str(thing.status), price=p.get("price"),
            currency=p.get("currency") or "usd", availability=Availability.model_validate(p.get("availability") or {}),
            fulfillment_options=[FulfillmentOption.model_validate(o) for o in p.get("fulfillmentOptions") or []]
            or [DIGITAL],
            tax_category=p.get("taxCategory") or "standard", max_quantity_per_order=p.get("maxQuantityPerOrder"),
            age_restricted=bool(p.get("ageRestricted", False)), sku=p.get("sku"), description=p.get("description"),
            images=p.get("images") or [], version=thing.version, created_at=thing.created_at,
            updated_at=thing.updated_at,
        )
    except ValidationError as error:
        raise InvalidProduct(f"product {thing.id} cannot be sold: {error.errors()[0]['msg']}",
                             {"id": str(thing.id)}) from None


async def create_product(ctx: WorkContext, payload: ProductCreate) -> Product:
    require(ctx.auth, "products", "create")
    properties = {**_properties(payload), "price": payload.price, "currency": payload.currency, "protocol": "acp"}
    properties.setdefault("availability", Availability().model_dump(mode="json"))
    properties.setdefault("fulfillmentOptions", [DIGITAL.model_dump(mode="json")])
    properties.setdefault("taxCategory", "standard")
    thing = await ctx.call(THING_CREATE, {"type": ThingType.PRODUCT.value, "name": payload.name,
                                          "properties": properties, "status": payload.status})
    return product_from_thing(thing)


async def get_product(ctx: WorkContext, payload: ProductTarget) -> Product:
    require(ctx.auth, "products", "read")
    return product_from_thing(await _thing(ctx, payload.id))


async def update_product(ctx: WorkContext, payload: ProductUpdate) -> Product:
    require(ctx.auth, "products", "update")
    current = await _thing(ctx, payload.id)
    product_from_thing(current)  # a product before the change
    change: dict[str, Any] = {"id": str(payload.id), "expected_version": current.version}
    if properties := _properties(payload):
        change["properties"] = properties
    if payload.name is not None:
        change["name"] = payload.name
    if payload.status is not None:
        change["status"] = payload.status
    _QUOTED.pop((ctx.auth.org_id, payload.id), None)
    return product_from_thing(await ctx.call(THING_UPDATE, change))


async def list_products(ctx: WorkContext, payload: ProductQuery) -> Products:
    require(ctx.auth, "products", "list")
    query: dict[str, Any] = {"type": ThingType.PRODUCT.value, "limit": payload.limit}
    if payload.cursor is not None:
        query["cursor"] = str(payload.cursor)
    page = await ctx.call(THING_QUERY, query)
    products = []
    for thing in page.things:
        try:
            products.append(product_from_thing(thing))
        except InvalidProduct:
            continue  # a `product` thing written around commerce without a price: not in the catalog
    return Products(products=products, next_cursor=page.next_cursor)


QUOTE_TTL = 1.0
"""Seconds a replica may quote (create, update) a product it read before; `complete` always reads it fresh."""
_QUOTED: dict[tuple[UUID, UUID], tuple[float, Product]] = {}


async def load_products(ctx: WorkContext, ids: list[UUID], auth: AuthContext, *, fresh: bool = True) -> Catalog:
    """The catalog's products of the caller's org by id, read with `auth` (commerce's own identity in that org: an
    agent platform's key need not read things); None for an unknown one or a thing that is not a product.

    `fresh=False` (a quote: create, update) may answer a product this replica read within `QUOTE_TTL` seconds,
    unless its stock is counted (stock is always read fresh: reservations count against it) or it changed
    through this replica since. What a `complete` charges is always read fresh."""
    found: Catalog = {}
    now = time.monotonic()
    for product_id in dict.fromkeys(ids):
        known = (ctx.auth.org_id, product_id)
        if not fresh and (cached := _QUOTED.get(known)) is not None and cached[0] > now:
            found[product_id] = cached[1]
            continue
        try:
            product = found[product_id] = product_from_thing(await _thing(ctx, product_id, auth))
        except (ProductNotFound, InvalidProduct):
            found[product_id] = None
            continue
        if product.availability.quantity is None:
            if len(_QUOTED) > 10_000:
                _QUOTED.clear()
            _QUOTED[known] = (now + QUOTE_TTL, product)
    return found


async def _thing(ctx: WorkContext, thing_id: UUID, auth: AuthContext | None = None) -> Thing:
    try:
        return (await ctx.call(THING_GET, {"id": str(thing_id)}, auth=auth, protocol=Protocol.NATIVE)).thing
    except NotFound:  # the graph's not_found (a thing of another org is not found either)
        raise ProductNotFound(f"no product {thing_id}", {"id": str(thing_id)}) from None
