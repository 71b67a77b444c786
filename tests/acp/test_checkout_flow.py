"""ACP checkout end to end over real HTTP: create -> update items and fulfillment -> complete with a delegated token.

Every request and answer is checked against the official 2026-04-17 JSON Schema (conftest.Merchant). The
catalog prices the session (a price in the request is ignored), the totals add up, the order is there,
the sale is in the event log's revenue by protocol and in the graph.
"""

from datetime import UTC, datetime, timedelta

from shared.contracts.eventlog import QUERY, REVENUE
from shared.contracts.graph import CONNECTION_QUERY, THING_GET
from tests.acp.conftest import ADDRESS, SHIPPING, Merchant, card, create_body, eventually, total
from tests.acp.test_delegate_payment import delegate, delegation


def assert_consistent(session: dict) -> None:
    """The totals' rules: lines add up to the session, the session's total is what it is made of."""
    for line in session["line_items"]:
        amounts = {t["type"]: t["amount"] for t in line["totals"]}
        assert amounts["items_base_amount"] == line["unit_amount"] * line["quantity"]
        assert amounts["subtotal"] == amounts["items_base_amount"] - amounts["items_discount"]
        assert amounts["total"] == amounts["subtotal"] + amounts["tax"]
    t = {e["type"]: e["amount"] for e in session["totals"]}
    lines = [{e["type"]: e["amount"] for e in line["totals"]} for line in session["line_items"]]
    assert t["items_base_amount"] == sum(line["items_base_amount"] for line in lines)
    assert t["tax"] == sum(line["tax"] for line in lines)
    assert t["subtotal"] == t["items_base_amount"] - t["items_discount"]
    assert t["total"] == t["subtotal"] - t["discount"] + t["fulfillment"] + t["tax"]


async def test_create_update_complete_sells_at_the_catalogs_price(merchant: Merchant) -> None:
    shirt = await merchant.product("T-shirt", 2500, fulfillment_options=SHIPPING,
                                   availability={"status": "in_stock", "quantity": 10})
    mug = await merchant.product("Mug", 1200, tax_category="reduced", fulfillment_options=SHIPPING)
    created = await merchant.create(create_body(
        shirt, shirt, buyer={"email": "jane@example.com", "first_name": "Jane"},
        line_items=[{"id": shirt, "unit_amount": 1}, {"id": shirt, "name": "free?", "unit_amount": 0}]))
    assert created["id"].startswith("cs_") and created["status"] == "incomplete"
    [line] = created["line_items"]
    assert (line["quantity"], line["unit_amount"], line["item"]["unit_amount"]) == (2, 2500, 2500)  # not 1, not 0
    assert {m["param"] for m in created["messages"]} == {"$.selected_fulfillment_options"}
    assert [o["id"] for o in created["fulfillment_options"]] == ["standard", "express"]
    assert_consistent(created)

    updated = await merchant.update(created["id"], {
        "line_items": [{"id": shirt}, {"id": mug}, {"id": mug}],
        "selected_fulfillment_options": [{"type": "shipping", "option_id": "express", "item_ids": [shirt, mug]}]})
    assert updated["status"] == "incomplete"
    assert [m["param"] for m in updated["messages"]] == ["$.fulfillment_details.address"]

    ready = await merchant.update(created["id"], {"fulfillment_details": {"name": "Jane", "address": ADDRESS}})
    assert ready["status"] == "ready_for_payment" and ready["messages"] == []
    assert_consistent(ready)
    amounts = {t["type"]: t["amount"] for t in ready["totals"]}
    assert amounts["items_base_amount"] == 2500 + 2 * 1200
    assert amounts["fulfillment"] == 1500
    assert amounts["tax"] == 200 + 120  # 8% of 2500, 5% of 2400
    assert amounts["total"] == 2500 + 2400 + 1500 + 320

    token = await delegate(merchant.caller, delegation(created["id"], max_amount=total(ready)))
    done = await merchant.complete(created["id"], {"payment_data": card(token),
                                                   "buyer": {"email": "jane@example.com"}})
    assert done["status"] == "completed"
    order = done["order"]
    assert order["checkout_session_id"] == created["id"] and order["status"] == "confirmed"
    assert {li["product_id"]: li["quantity"]["ordered"] for li in order["line_items"]} == {shirt: 1, mug: 2}
    assert total(order) == total(ready)
    assert (await merchant.get(created["id"]))["order"]["id"] == order["id"]


async def test_the_sale_counts_in_revenue_by_protocol_and_lands_in_the_graph(merchant: Merchant) -> None:
    ebook = await merchant.product("E-book", 1000, tax_category="digital")
    session = await merchant.create(create_body(ebook, ebook, ebook, buyer={"email": "reader@example.com"}))
    assert session["status"] == "ready_for_payment"  # digital only: one option, chosen; no address needed
    assert session["selected_fulfillment_options"][0]["option_id"] == "digital"
    token = await delegate(merchant.caller, delegation(session["id"], max_amount=3000))
    done = await merchant.complete(session["id"], {"payment_data": card(token)})
    assert total(done) == 3000

    ctx, bus = merchant.caller.account.ctx, merchant.bus
    now = datetime.now(UTC)
    window = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}

    async def acp_revenue() -> list:
        answer = await bus.request(REVENUE, {**window, "status": "processed"}, ctx)
        return [t for t in answer.totals if t.protocol == "acp"]

    [row] = await eventually(acp_revenue)
    assert (row.currency, float(row.total), row.count) == ("usd", 30.0, 1)

    async def payment_events() -> list:
        page = await bus.request(QUERY, {"types": ["payment_event"], "protocols": ["acp"], **window}, ctx)
        return page.events

    [event] = await eventually(payment_events)
    assert event.metadata["status"] == "processed" and event.metadata["orderId"] == done["order"]["id"]

    async def processed_payment() -> dict:
        thing = (await bus.request(THING_GET, {"id": str(event.target_id)}, ctx)).thing
        return thing.properties if thing.properties["status"] == "processed" else {}

    payment = await eventually(processed_payment)
    assert (payment["protocol"], payment["amount"], payment["amountMinor"], payment["currency"]) == (
        "acp", 30.0, 3000, "usd")

    async def sale() -> list:
        links = await bus.request(CONNECTION_QUERY, {"thing_id": ebook, "direction": "in",
                                                     "types": ["transacted"]}, ctx)
        return [c for c in links.connections if c.metadata.get("checkoutSessionId") == session["id"]]

    [connection] = await eventually(sale)
    assert connection.metadata["protocol"] == "acp" and connection.metadata["transactionType"] == "payment"
    assert (connection.metadata["quantity"], connection.metadata["amountMinor"]) == (3, 3000)
    buyer = (await bus.request(THING_GET, {"id": str(connection.from_id)}, ctx)).thing
    assert buyer.type == "external_agent" and buyer.properties["agentId"] == f"acp:{ctx.actor_id}"


async def test_every_step_logs_its_commerce_event_once(merchant: Merchant) -> None:
    """Each step's event is staged by the statement that stores the step's answer (its idempotency record): the
    log holds one per step, with the session's state as the step left it."""
    ebook = await merchant.product("E-book", 1000, tax_category="digital")
    session = await merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
    updated = await merchant.update(session["id"], {"line_items": [{"id": ebook}, {"id": ebook}]})
    token = await delegate(merchant.caller, delegation(session["id"], max_amount=total(updated)))
    await merchant.complete(session["id"], {"payment_data": card(token)})
    ctx, bus = merchant.caller.account.ctx, merchant.bus
    now = datetime.now(UTC)
    window = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}
    steps = ["purchase_initiated", "checkout_updated", "payment_delegated", "purchase_completed"]

    async def logged() -> list:
        page = await bus.request(QUERY, {"types": ["commerce_event"], "protocols": ["acp"], **window}, ctx)
        mine = [e.metadata for e in page.events if e.metadata.get("checkoutSessionId") == session["id"]]
        return mine if len(mine) >= len(steps) else []

    events = await eventually(logged)
    assert sorted(e["eventType"] for e in events) == sorted(steps)
    by_step = {e["eventType"]: e for e in events}
    assert by_step["checkout_updated"]["amountMinor"] == 2 * by_step["purchase_initiated"]["amountMinor"] > 0
    assert by_step["payment_delegated"]["token"] == token
