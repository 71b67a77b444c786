"""The catalog (`commerce.products.*`) over the bus, and `one products|checkout` as a person types them.

A product is a graph `product` thing with ACP's selling properties; commerce refuses one it could not sell,
and a checkout prices from it (test_checkout_flow.py).
"""

import pytest

from shared.contracts.commerce.acp import CHECKOUT_CREATE
from shared.contracts.commerce.products import (
    PRODUCT_CREATE,
    PRODUCT_GET,
    PRODUCT_LIST,
    PRODUCT_UPDATE,
    ProductNotFound,
)
from shared.contracts.graph import THING_CREATE, THING_GET
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Forbidden, InvalidRequest
from shared.runtime.client import BusClient
from tests.acp.conftest import create_body
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, add_member, owner  # noqa: F401 (fixtures)


async def test_a_product_is_a_thing_with_its_selling_properties(bus: BusClient, owner: Account) -> None:  # noqa: F811
    created = await bus.request(PRODUCT_CREATE, {
        "name": "Poster", "price": 1250, "currency": "eur", "availability": {"status": "low_stock", "quantity": 3},
        "fulfillment_options": [{"id": "post", "type": "shipping", "title": "Post", "amount": 400}],
        "tax_category": "reduced", "sku": "P-1"}, owner.ctx)
    assert (created.price, created.currency, created.availability.quantity) == (1250, "eur", 3)
    thing = (await bus.request(THING_GET, {"id": str(created.id)}, owner.ctx)).thing
    assert thing.type == "product" and thing.status == "active"
    assert thing.properties["price"] == 1250 and thing.properties["taxCategory"] == "reduced"
    assert thing.properties["fulfillmentOptions"][0]["id"] == "post" and thing.properties["protocol"] == "acp"

    updated = await bus.request(PRODUCT_UPDATE, {"id": str(created.id), "price": 990,
                                                 "availability": {"status": "out_of_stock", "quantity": 0}}, owner.ctx)
    assert (updated.price, updated.availability.status, updated.sku) == (990, "out_of_stock", "P-1")
    assert updated.version == created.version + 1
    assert (await bus.request(PRODUCT_GET, {"id": str(created.id)}, owner.ctx)).price == 990

    digital = await bus.request(PRODUCT_CREATE, {"name": "Song", "price": 99}, owner.ctx)
    assert [o.type for o in digital.fulfillment_options] == ["digital"] and digital.currency == "usd"
    listed = await bus.request(PRODUCT_LIST, {}, owner.ctx)
    assert {p.id for p in listed.products} == {created.id, digital.id}


async def test_what_cannot_be_sold_is_refused(bus: BusClient, owner: Account) -> None:  # noqa: F811
    for body in ({"name": "Free?", "price": -1}, {"name": "X", "price": 1, "currency": "USD"},
                 {"name": "X", "price": 1, "fulfillment_options": []}, {"name": "X", "price": 1, "colour": "red"},
                 {"name": "X", "price": 1, "availability": {"status": "gone"}}):
        with pytest.raises(InvalidRequest):
            await bus.request(PRODUCT_CREATE, body, owner.ctx)
    note = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Not a product"}, owner.ctx)
    with pytest.raises(ProductNotFound):
        await bus.request(PRODUCT_GET, {"id": str(note.id)}, owner.ctx)
    with pytest.raises(ProductNotFound):
        await bus.request(PRODUCT_UPDATE, {"id": str(note.id), "price": 1}, owner.ctx)
    priceless = await bus.request(THING_CREATE, {"type": "product", "name": "Priceless", "status": "active"}, owner.ctx)
    assert priceless.id not in {p.id for p in (await bus.request(PRODUCT_LIST, {}, owner.ctx)).products}


async def test_a_customer_cannot_stock_the_catalog(bus: BusClient, owner: Account) -> None:  # noqa: F811
    customer = await add_member(bus, owner, role="customer")
    with pytest.raises(Forbidden):
        await bus.request(PRODUCT_CREATE, {"name": "Mine", "price": 1}, customer.ctx)


async def test_products_from_the_cli(one: Cli) -> None:  # noqa: F811
    added = (await one("products", "add", "Field guide", "--price", "24.50", "--stock", "5",
                       "--shipping", "standard:Standard:4.99", "--sku", "FG-1", "--json")).json()
    assert (added["price"], added["availability"]["quantity"]) == (2450, 5)
    assert added["fulfillment_options"][0]["amount"] == 499
    listed = (await one("products", "list")).ok()
    assert added["id"] in listed and "24.50 usd" in listed
    assert all(len(line) <= 80 for line in listed.splitlines())
    shown = (await one("products", "show", added["id"])).ok()
    assert "standard (4.99 usd)" in shown and "FG-1" in shown
    one_line_error(await one("products", "add", "Bad", "--price", "1.999"), 2, "--price")
    one_line_error(await one("products", "show", "01a24b0b-e91a-7123-9dcb-7785eca5aec1"), 5, "product_not_found")


async def test_checkout_sessions_from_the_cli(one: Cli, bus: BusClient, owner: Account) -> None:  # noqa: F811
    product = await bus.request(PRODUCT_CREATE, {"name": "Field guide", "price": 2450, "fulfillment_options": [
        {"id": "standard", "type": "shipping", "title": "Standard", "amount": 499}]}, owner.ctx)
    session = (await bus.request(CHECKOUT_CREATE, {"request": create_body(str(product.id), str(product.id))},
                                 owner.ctx, protocol=Protocol.ACP)).session
    sessions = (await one("checkout", "list")).ok()
    assert session["id"] in sessions and "incomplete" in sessions
    assert "57.91 usd" in sessions  # 49.00 + 8% tax + 4.99 shipping
    assert all(len(line) <= 80 for line in sessions.splitlines())
    detail = (await one("checkout", "show", session["id"])).ok()
    assert "Field guide" in detail and "missing" in detail and "$.buyer" in detail
    one_line_error(await one("checkout", "show", "cs_nope"), 5, "checkout_session_not_found")
