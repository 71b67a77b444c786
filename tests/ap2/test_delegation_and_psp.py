"""AP2 v2 on the real stack: chains of more than one delegation hop (user -> agent -> sub-agent) verified hop by hop
and refused with the hop named; a verified payment mandate charges the PSP before the receipt is signed, and a
decline leaves no receipt, a typed refusal and a failed `payment_event`.
"""

import json
import time
from typing import Any

import asyncpg
import pytest

from services.commerce.ap2 import schemas
from shared.contracts.commerce.ap2 import MandateRefused
from shared.contracts.commerce.payments import PaymentDeclined
from shared.runtime.client import BusClient
from tests.ap2.chains import INSTRUMENT, close, delegate, graph_synced, key, last_token, open_payment, public
from tests.ap2.test_merchant import ON_DEMAND, RANGE, Merchant, merchant  # noqa: F401 (fixture)
from tests.graph.conftest import owner  # noqa: F401 (fixture)
from tests.tenancy.conftest import admin  # noqa: F401 (fixtures)
from tests.x402.test_prices import events_of

BUDGET = {"type": "payment.budget", "currency": "USD", "max": 3000}
EARLIER = iter(range(int(time.time()) + 3000, 0, -10))
"""Each delegated mandate's `exp`: before the root's hour, each one before the one made before it."""


def sub_mandate(sub_agent: Any, *constraints: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The open mandate an agent hands its sub-agent (open_payment adds the same payment.reference), expiring
    before the root (an hour) and before any delegation made earlier in the test."""
    fields.setdefault("exp", next(EARLIER))
    return open_payment(sub_agent, list(constraints), **fields)


async def test_a_two_hop_delegation_pays_and_counts_at_every_level(
    bus: BusClient, merchant: Merchant, admin: asyncpg.Connection  # noqa: F811
) -> None:
    sub = key("sub-agent")
    root = merchant.mandate(RANGE, BUDGET, ON_DEMAND)
    narrower = {"type": "payment.budget", "currency": "USD", "max": 2000}
    delegated = delegate(root, merchant.agent, sub_mandate(sub, RANGE, narrower, ON_DEMAND))
    first = await merchant.checkout(1500)
    receipt = await merchant.present(first, close(delegated, sub, first))
    assert receipt.receipt["status"] == "Success" and receipt.charge_id and receipt.charge_id.startswith("ch_test_")
    second = await merchant.checkout(1000)  # 2500 in all: within the root's 3000, over the sub-agent's 2000
    refused = await merchant_refusal(merchant, second, close(delegated, sub, second))
    assert refused["reason"] == "budget"
    [payment] = await events_of(bus, merchant.account, "payment_event", 1)
    assert payment["hops"] == 2 and payment["protocol"] == "ap2"
    spent = {row["open_hash"]: row["uses"] for row in await admin.fetch(
        "SELECT open_hash, uses FROM commerce.ap2_open_mandates WHERE org_id = $1", merchant.account.org_id)}
    assert sorted(spent.values()) == [1, 1]  # the root and the delegated mandate each counted the purchase once
    await graph_synced(admin, merchant.account.org_id)
    [stored] = await admin.fetch("SELECT claims FROM commerce.ap2_mandates WHERE org_id = $1 AND kind = 'open'",
                                 merchant.account.org_id)
    claims = json.loads(stored["claims"])
    assert claims["cnf"]["jwk"]["x"] == public(sub)["x"]  # the delegated (last) open mandate is the one recorded
    assert schemas.errors(schemas.OPEN_PAYMENT, claims) == []


async def merchant_refusal(shop: Merchant, purchase: Any, chain: str) -> dict[str, Any]:
    with pytest.raises(MandateRefused) as raised:
        await shop.present(purchase, chain)
    return raised.value.details


async def test_each_broken_hop_is_refused_with_its_number(bus: BusClient, merchant: Merchant) -> None:  # noqa: F811
    sub, subsub = key("sub-agent"), key("sub-sub-agent")
    root = merchant.mandate(RANGE, BUDGET, ON_DEMAND)
    good = delegate(root, merchant.agent, sub_mandate(sub, RANGE, BUDGET, ON_DEMAND))
    purchase = await merchant.checkout(1500)
    wider = {"type": "payment.amount_range", "currency": "USD", "min": 100, "max": 9000}
    cases = [
        # hop 1 signed by a key that is not the agent's
        ({"reason": "key_binding", "hop": 1},
         close(delegate(root, merchant.agent, sub_mandate(sub, RANGE, BUDGET, ON_DEMAND), signer=key("x")), sub,
               purchase)),
        # hop 1 not bound to the root
        ({"reason": "key_binding", "hop": 1},
         close(delegate(root, merchant.agent, sub_mandate(sub, RANGE, BUDGET, ON_DEMAND), sd_hash="AAAA"), sub,
               purchase)),
        # hop 1 loosens the amount range, drops the budget, outlives the root
        ({"reason": "widened", "hop": 1, "constraint": "payment.amount_range"},
         close(delegate(root, merchant.agent, sub_mandate(sub, wider, BUDGET, ON_DEMAND)), sub, purchase)),
        ({"reason": "widened", "hop": 1, "constraint": "payment.budget"},
         close(delegate(root, merchant.agent, sub_mandate(sub, RANGE, ON_DEMAND)), sub, purchase)),
        ({"reason": "widened", "hop": 1, "constraint": "exp"},
         close(delegate(root, merchant.agent, sub_mandate(sub, RANGE, BUDGET, ON_DEMAND, exp=2**40)), sub, purchase)),
        # the closed mandate signed by the agent, not the sub-agent the last hop names
        ({"reason": "key_binding", "hop": 2}, close(good, merchant.agent, purchase)),
        # three hops: the sub-agent's own delegation widens the payees
        ({"reason": "widened", "hop": 2, "constraint": "payment.allowed_payees"},
         close(delegate(delegate(root, merchant.agent, sub_mandate(
             sub, RANGE, BUDGET, ON_DEMAND, {"type": "payment.allowed_payees", "allowed": [
                 {"id": purchase.merchant_id, "name": "Merchant"}]})), sub, sub_mandate(
             subsub, RANGE, BUDGET, ON_DEMAND, {"type": "payment.allowed_payees", "allowed": [
                 {"id": purchase.merchant_id, "name": "Merchant"}, {"id": "elsewhere", "name": "Else"}]})),
             subsub, purchase)),
    ]
    for expected, chain in cases:
        details = await merchant_refusal(merchant, purchase, chain)
        assert {name: details.get(name) for name in expected} == expected, (expected, details)
    rejected = [e for e in await events_of(bus, merchant.account, "mandate_event", 2 * len(cases))
                if e["action"] == "rejected"]
    assert {(e["reason"], e.get("hop")) for e in rejected} == {("key_binding", 1), ("widened", 1),
                                                                ("key_binding", 2), ("widened", 2)}
    three = delegate(good, sub, sub_mandate(subsub, RANGE, BUDGET, ON_DEMAND))
    assert (await merchant.present(purchase, close(three, subsub, purchase))).checkout_id == purchase.id
    assert last_token(three) != last_token(good)


async def test_a_declined_instrument_leaves_no_receipt_and_a_failed_payment(
    bus: BusClient, merchant: Merchant, admin: asyncpg.Connection  # noqa: F811
) -> None:
    root = merchant.mandate(RANGE, BUDGET, ON_DEMAND)
    purchase = await merchant.checkout(1200)
    declined = close(root, merchant.agent, purchase, mandate={"payment_instrument": {
        "id": "pm_card_chargeDeclinedInsufficientFunds", "type": "card", "description": "Test card"}})
    with pytest.raises(PaymentDeclined) as raised:
        await merchant.present(purchase, declined)
    assert raised.value.details["reason"] == "insufficient_funds"
    org = merchant.account.org_id
    assert await admin.fetchval("SELECT count(*) FROM commerce.ap2_receipts WHERE org_id = $1", org) == 0
    assert await admin.fetchval("SELECT status FROM commerce.ap2_checkouts WHERE id = $1", purchase.id) == "open"
    [failed] = await events_of(bus, merchant.account, "payment_event", 1)
    assert (failed["status"], failed["declineReason"], failed["protocol"]) == ("failed", "insufficient_funds", "ap2")
    # the use was not counted: the same mandate with a good card pays the same checkout, the budget whole
    receipt = await merchant.present(purchase, close(root, merchant.agent, purchase,
                                                     mandate={"payment_instrument": INSTRUMENT}))
    assert receipt.receipt["psp_confirmation_id"] == receipt.charge_id
    uses = await admin.fetchval("SELECT uses FROM commerce.ap2_open_mandates WHERE org_id = $1", org)
    assert uses == 1


async def test_a_declined_delegated_chain_counts_no_use_at_any_level(
    bus: BusClient, merchant: Merchant, admin: asyncpg.Connection  # noqa: F811
) -> None:
    """Each level's use is counted with the receipt, after the PSP's charge: a decline counts none."""
    sub = key("sub-agent")
    delegated = delegate(merchant.mandate(RANGE, BUDGET, ON_DEMAND), merchant.agent,
                         sub_mandate(sub, RANGE, BUDGET, ON_DEMAND))
    purchase = await merchant.checkout(1200)
    with pytest.raises(PaymentDeclined):
        await merchant.present(purchase, close(delegated, sub, purchase, mandate={"payment_instrument": {
            "id": "pm_card_chargeDeclinedInsufficientFunds", "type": "card", "description": "Test card"}}))
    uses = await admin.fetch("SELECT uses, spent FROM commerce.ap2_open_mandates WHERE org_id = $1",
                             merchant.account.org_id)
    assert [(row["uses"], json.loads(row["spent"])) for row in uses] == [(0, {}), (0, {})]  # locked, none counted
    await merchant.present(purchase, close(delegated, sub, purchase))
    uses = await admin.fetch("SELECT uses FROM commerce.ap2_open_mandates WHERE org_id = $1", merchant.account.org_id)
    assert [row["uses"] for row in uses] == [1, 1]
