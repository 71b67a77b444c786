"""Stock reservation: a session ready for payment holds its counted items until it expires, is canceled or sells.

Over real HTTP, every body checked against the official JSON Schema (conftest.Merchant). Two sessions racing
for the last unit: one holds it, the other is told it is out of stock; never oversold.
"""

import asyncio

import asyncpg

from shared.contracts.graph import THING_GET
from tests.acp.conftest import Merchant, create_body, eventually
from tests.acp.test_checkout_rules import BUYER, codes, pay
from tests.tenancy.conftest import admin  # noqa: F401 (fixture)


async def test_two_sessions_racing_for_the_last_unit_one_holds_it(merchant: Merchant) -> None:
    lamp = await merchant.product("Lamp", 3000, availability={"status": "low_stock", "quantity": 1})
    first, second = await asyncio.gather(*(merchant.create(create_body(lamp, buyer=BUYER)) for _ in range(2)))
    assert sorted(s["status"] for s in (first, second)) == ["not_ready_for_payment", "ready_for_payment"]
    holder, loser = (first, second) if first["status"] == "ready_for_payment" else (second, first)
    assert codes(loser) == [("out_of_stock", "$.line_items[0]")]
    assert loser["line_items"][0]["available_quantity"] == 0
    await merchant.complete(loser["id"], await pay(merchant, loser), status=400)  # not ready: nothing sold
    done = await merchant.complete(holder["id"], await pay(merchant, holder))
    assert done["status"] == "completed"

    async def stock_taken() -> dict:
        thing = (await merchant.bus.request(THING_GET, {"id": lamp}, merchant.caller.account.ctx)).thing
        return thing.properties["availability"] if thing.properties["availability"]["quantity"] == 0 else {}

    assert (await eventually(stock_taken))["status"] == "out_of_stock"
    late = await merchant.create(create_body(lamp, buyer=BUYER))
    assert codes(late) == [("out_of_stock", "$.line_items[0]")]


async def test_a_canceled_session_releases_what_it_held(merchant: Merchant) -> None:
    lamp = await merchant.product("Lamp", 3000, availability={"status": "in_stock", "quantity": 2})
    holder = await merchant.create(create_body(lamp, lamp, buyer=BUYER))
    assert holder["status"] == "ready_for_payment"
    waiting = await merchant.create(create_body(lamp, buyer=BUYER))
    assert codes(waiting) == [("out_of_stock", "$.line_items[0]")]
    fewer = await merchant.update(holder["id"], {"line_items": [{"id": lamp}]})  # holds one now, frees one
    assert fewer["status"] == "ready_for_payment"
    assert (await merchant.update(waiting["id"], {"buyer": BUYER}))["status"] == "ready_for_payment"
    third = await merchant.create(create_body(lamp, buyer=BUYER))
    assert codes(third) == [("out_of_stock", "$.line_items[0]")]
    await merchant.cancel(holder["id"])
    assert (await merchant.update(third["id"], {"buyer": BUYER}))["status"] == "ready_for_payment"


async def test_an_expired_session_holds_nothing_and_a_sale_converts_its_hold(
        merchant: Merchant, admin: asyncpg.Connection) -> None:  # noqa: F811
    lamp = await merchant.product("Lamp", 3000, availability={"status": "in_stock", "quantity": 2})
    stale = await merchant.create(create_body(lamp, lamp, buyer=BUYER))
    assert stale["status"] == "ready_for_payment"
    held = await admin.fetch("SELECT quantity, state FROM commerce.stock_reservations WHERE checkout_session_id = $1",
                             stale["id"])
    assert [(r["quantity"], r["state"]) for r in held] == [(2, "held")]
    for table in ("checkout_sessions", "stock_reservations"):
        column = "id" if table == "checkout_sessions" else "checkout_session_id"
        await admin.execute(f"UPDATE commerce.{table} SET expires_at = now() - interval '1 second' "
                            f"WHERE {column} = $1", stale["id"])
    buyer = await merchant.create(create_body(lamp, buyer=BUYER))
    assert buyer["status"] == "ready_for_payment" and buyer["line_items"][0]["available_quantity"] == 2
    done = await merchant.complete(buyer["id"], await pay(merchant, buyer))
    assert done["status"] == "completed"
    other = await merchant.create(create_body(lamp, lamp, buyer=BUYER))  # 1 left, sold or not yet taken
    assert codes(other) == [("quantity_exceeded", "$.line_items[0]")]
    assert other["line_items"][0]["available_quantity"] == 1

    async def settled() -> bool:
        rows = await admin.fetch("SELECT 1 FROM commerce.stock_reservations WHERE checkout_session_id = $1",
                                 buyer["id"])
        return not rows

    await eventually(settled)  # the sold hold goes once the graph's stock was taken down
    thing = (await merchant.bus.request(THING_GET, {"id": lamp}, merchant.caller.account.ctx)).thing
    assert thing.properties["availability"]["quantity"] == 1
