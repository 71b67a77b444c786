"""`payment.reference`, checked (issue #22's gaps), on the real stack: an open payment mandate names the open checkout
mandate it pays for (its digest, as the official SDK computes it); the merchant refuses a payment whose reference
does not name the checkout mandate that authorized this checkout — or that names a checkout mandate it accepted
for another checkout — with `reason: reference` and the constraint named. A person grants the pair to an agent
with `checkout_mandate_id`, and the agent checks out, then pays.
"""

from typing import Any

import pytest

from shared.contracts.commerce.ap2 import (
    AP2_CLOSE,
    AP2_GRANT,
    AP2_PRESENT,
    MandateRefused,
)
from shared.kernel.envelope import Protocol
from shared.kernel.errors import InvalidRequest
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent
from tests.ap2.chains import Purchase, checkout_reference, close, close_checkout, open_checkout_mandate
from tests.ap2.test_agent import holding, setup
from tests.ap2.test_checkout_mandates import LINE_ITEMS, MUG, checkout
from tests.ap2.test_merchant import RANGE, Merchant, merchant  # noqa: F401 (fixture)
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account
from tests.x402.test_prices import events_of


def _purchase(made: Any) -> Purchase:
    return Purchase(made.merchant_id, made.checkout_hash, made.nonce, made.amount, id=made.id)


async def test_a_payment_must_name_the_checkout_mandate_of_its_checkout(
    bus: BusClient, merchant: Merchant  # noqa: F811
) -> None:
    shop = merchant.account
    mugs = open_checkout_mandate(merchant.issuer, merchant.agent, [LINE_ITEMS])
    other = open_checkout_mandate(merchant.issuer, merchant.agent, [LINE_ITEMS])
    made = await checkout(bus, shop, MUG)
    purchase = _purchase(made)
    await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "kind": "checkout", "mandate": close_checkout(
        mugs, merchant.agent, purchase, made.checkout_jwt)}, shop.ctx, protocol=Protocol.AP2)

    for reference in (None, checkout_reference(other)):  # a standalone payment mandate; another checkout mandate's
        with pytest.raises(MandateRefused) as raised:
            await merchant.present(purchase, close(merchant.mandate(RANGE, reference=reference), merchant.agent,
                                                   purchase))
        assert raised.value.details["reason"] == "reference"
        assert raised.value.details["constraint"] == "payment.reference"
        assert raised.value.details["expected"] == checkout_reference(mugs)
    paid = await merchant.present(purchase, close(merchant.mandate(RANGE, reference=checkout_reference(mugs)),
                                                  merchant.agent, purchase))
    assert paid.receipt["status"] == "Success"

    plain = _purchase(await checkout(bus, shop, MUG))  # no checkout mandate authorized it
    with pytest.raises(MandateRefused) as raised:  # `mugs` authorized another checkout, not this one
        await merchant.present(plain, close(merchant.mandate(RANGE, reference=checkout_reference(mugs)),
                                            merchant.agent, plain))
    assert (raised.value.details["reason"], raised.value.details["constraint"]) == ("reference", "payment.reference")
    alone = await merchant.present(plain, close(merchant.mandate(RANGE), merchant.agent, plain))
    assert alone.receipt["status"] == "Success"  # a payment mandate of no checkout mandate pays a plain checkout
    rejected = [e for e in await events_of(bus, shop, "mandate_event", 12) if e["action"] == "rejected"]
    assert [e["reason"] for e in rejected] == ["reference"] * 3


async def test_a_person_grants_the_pair_and_the_agent_checks_out_then_pays(
    bus: BusClient, owner: Account, stranger: Account  # noqa: F811
) -> None:
    agent, standalone = await setup(bus, owner, stranger)
    rules = [LINE_ITEMS, {"type": "checkout.allowed_merchants", "allowed": [{"id": str(stranger.org_id),
                                                                               "name": "Shop"}]}]
    cart = await bus.request(AP2_GRANT, {"agent_id": str(agent.id), "kind": "checkout", "constraints": rules},
                             owner.ctx)
    budget = [{"type": "payment.amount_range", "currency": "USD", "max": 2000}]
    pays = await bus.request(AP2_GRANT, {"agent_id": str(agent.id), "constraints": budget,
                                         "checkout_mandate_id": str(cart.id)}, owner.ctx)
    assert {"type": "payment.reference", "conditional_transaction_id": cart.credential_hash} in \
        pays.mandate["constraints"]

    made, elsewhere = await checkout(bus, stranger, MUG), await checkout(bus, stranger, MUG)
    as_agent = holding(owner.org_id, agent.id)

    async def close_for(mandate_id: Any, made: Any = made) -> Any:
        return await bus.request(AP2_CLOSE, {"mandate_id": str(mandate_id), "checkout_jwt": made.checkout_jwt,
                                             "nonce": made.nonce}, as_agent, protocol=Protocol.AP2)

    async def present(mandate_id: Any, kind: str) -> Any:
        closed = await close_for(mandate_id)
        return await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "mandate": closed.mandate, "kind": kind},
                                 stranger.ctx, protocol=Protocol.AP2)

    assert (await present(cart.id, "checkout")).kind == "checkout"
    with pytest.raises(MandateRefused) as raised:  # granted on its own: refused by the agent's side, unsigned
        await close_for(standalone.id)
    assert (raised.value.details["reason"], raised.value.details["expected"]) == ("reference", cart.credential_hash)
    with pytest.raises(MandateRefused) as raised:  # `cart` did not check `elsewhere` out
        await close_for(pays.id, elsewhere)
    assert raised.value.details["reason"] == "reference"
    assert (await present(pays.id, "payment")).receipt["status"] == "Success"
    checks = await events_of(bus, owner, "price_event", 3)
    assert sorted((c["withinBudget"], c.get("reason")) for c in checks) == [
        (False, "reference"), (False, "reference"), (True, None)]

    someone = await make_agent(bus, owner, "openai:unused", deploy=False)
    for bad in ({"agent_id": str(someone.id), "checkout_mandate_id": str(cart.id)},  # another agent's
                {"agent_id": str(agent.id), "checkout_mandate_id": str(pays.id)},  # not a checkout mandate
                {"agent_id": str(agent.id), "checkout_mandate_id": str(cart.id), "kind": "checkout"},
                {"agent_id": str(agent.id), "checkout_mandate_id": str(cart.id), "constraints": [
                    *budget, {"type": "payment.reference", "conditional_transaction_id": "x"}]}):
        with pytest.raises(InvalidRequest):
            await bus.request(AP2_GRANT, {"constraints": rules if bad.get("kind") else budget, **bad}, owner.ctx)
