"""AP2 v2, the merchant's side, on the real stack (NATS, Postgres, the gateway over HTTP): a valid mandate chain
pays a checkout with a receipt that verifies with the merchant's published JWKS; every broken chain is refused
with the precise reason; a budget holds across purchases, also when they race; what is stored is schema-valid.
"""

import asyncio
import json
import time
from typing import Any

import asyncpg
import httpx
import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from services.commerce.ap2 import schemas
from shared.contracts.commerce.ap2 import (
    AP2_CHECKOUT_CREATE,
    AP2_PRESENT,
    AP2_RECEIPT_GET,
    AP2_TRUST_ADD,
    AP2_TRUST_LIST,
    MandateRefused,
)
from shared.kernel.envelope import Protocol
from shared.kernel.errors import InvalidRequest
from shared.runtime.client import BusClient
from tests.ap2.chains import Purchase, close, graph_synced, jwks, key, open_mandate
from tests.graph.conftest import owner  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, admin  # noqa: F401 (fixtures)
from tests.x402.test_prices import events_of

RANGE = {"type": "payment.amount_range", "currency": "USD", "min": 100, "max": 5000}
ON_DEMAND = {"type": "payment.agent_recurrence", "frequency": "ON_DEMAND"}


class Merchant:
    """Org `account` as a merchant that trusts one credential provider (`issuer`), and a shopping agent's key."""

    def __init__(self, bus: BusClient, account: Account) -> None:
        self.bus, self.account = bus, account
        self.issuer, self.agent = key("cp-1"), key("agent-1")

    async def checkout(self, amount: int = 1500) -> Purchase:
        made = await self.bus.request(AP2_CHECKOUT_CREATE, {"amount": amount, "currency": "USD", "items": [
            {"id": "sku-1", "title": "Mug", "price": amount}]}, self.account.ctx, protocol=Protocol.AP2)
        return Purchase(made.merchant_id, made.checkout_hash, made.nonce, amount, id=made.id)

    def mandate(self, *constraints: dict[str, Any], **fields: Any) -> str:
        return open_mandate(self.issuer, self.agent, list(constraints or [RANGE]), **fields)

    async def present(self, purchase: Purchase, chain: str) -> Any:
        return await self.bus.request(AP2_PRESENT, {"checkout_id": str(purchase.id), "mandate": chain},
                                      self.account.ctx, protocol=Protocol.AP2)

    async def refused(self, purchase: Purchase, chain: str) -> str:
        with pytest.raises(MandateRefused) as raised:
            await self.present(purchase, chain)
        return raised.value.details["reason"]


@pytest.fixture
async def merchant(bus: BusClient, owner: Account) -> Merchant:  # noqa: F811
    shop = Merchant(bus, owner)
    await bus.request(AP2_TRUST_ADD, {"issuer": "https://cp.test", "jwks": jwks(shop.issuer)}, owner.ctx)
    return shop


def verify_receipt(token: str, published: dict[str, Any]) -> dict[str, Any]:
    """The receipt's claims, checked with jwcrypto against the key of the published set its header names."""
    jws = JWS()
    jws.deserialize(token)
    [jwk] = [k for k in published["keys"] if k["kid"] == jws.jose_header["kid"]]
    jws.verify(JWK(**jwk), alg="ES256")
    return json.loads(jws.payload)


async def test_a_valid_chain_pays_with_a_receipt_the_published_jwks_verifies(
    bus: BusClient, merchant: Merchant, gateway: str, admin: asyncpg.Connection  # noqa: F811
) -> None:
    purchase = await merchant.checkout(1500)
    chain = close(merchant.mandate(RANGE), merchant.agent, purchase)
    receipt = await merchant.present(purchase, chain)

    async with httpx.AsyncClient(base_url=gateway) as http:  # no API key: the keys are public
        published = (await http.get(f"/v1/ap2/{merchant.account.org_id}/jwks.json")).json()
    claims = verify_receipt(receipt.receipt_jwt, published)
    assert claims == receipt.receipt and claims["status"] == "Success" and claims["iss"] == purchase.merchant_id
    assert schemas.errors(schemas.PAYMENT_RECEIPT, claims) == []
    assert (await bus.request(AP2_RECEIPT_GET, {"id": str(receipt.id)}, merchant.account.ctx)).receipt == claims

    rows = await admin.fetch("SELECT kind, claims, credential FROM commerce.ap2_mandates WHERE org_id = $1",
                             merchant.account.org_id)
    stored = {row["kind"]: json.loads(row["claims"]) for row in rows}
    assert schemas.errors(schemas.OPEN_PAYMENT, stored["open"]) == []
    assert schemas.errors(schemas.PAYMENT, stored["closed"]) == []
    assert all(row["credential"] is None for row in rows)  # a presented credential is never kept
    [stored_receipt] = await admin.fetch("SELECT receipt FROM commerce.ap2_receipts WHERE org_id = $1",
                                         merchant.account.org_id)
    assert schemas.errors(schemas.PAYMENT_RECEIPT, json.loads(stored_receipt["receipt"])) == []

    await graph_synced(admin, merchant.account.org_id)  # written after the reply
    things = await admin.fetch("SELECT id, properties FROM graph.things WHERE org_id = $1 AND type = 'mandate'",
                               merchant.account.org_id)
    by_type = {json.loads(t["properties"])["mandateType"]: t for t in things}
    assert set(by_type) == {"open", "closed"} and chain not in str([dict(t) for t in things])  # hashes, no credential
    assert json.loads(by_type["closed"]["properties"])["credentialHash"] == receipt.receipt["reference"]
    link = await admin.fetchrow("SELECT from_id, to_id, metadata FROM graph.connections WHERE org_id = $1 AND "
                                "type = 'fulfilled'", merchant.account.org_id)
    assert (link["from_id"], link["to_id"]) == (by_type["closed"]["id"], by_type["open"]["id"])
    assert json.loads(link["metadata"])["protocol"] == "ap2"

    [payment] = await events_of(bus, merchant.account, "payment_event", 1)
    assert payment["protocol"] == "ap2" and payment["amountMinor"] == 1500 and payment["currency"] == "USD"
    actions = {event["action"] for event in await events_of(bus, merchant.account, "mandate_event", 2)}
    assert actions == {"presented", "verified"}


async def test_each_broken_chain_is_refused_with_its_reason(bus: BusClient, merchant: Merchant) -> None:
    purchase = await merchant.checkout(1500)
    root = merchant.mandate(RANGE, {"type": "payment.allowed_payees", "allowed": [
        {"id": purchase.merchant_id, "name": "Merchant"}]})
    stranger = key("cp-1")  # same kid as the trusted one, another key
    other = await merchant.checkout(1500)
    cases = [
        ("untrusted_issuer", close(open_mandate(stranger, merchant.agent, [RANGE]), merchant.agent, purchase)),
        ("key_binding", close(root, merchant.agent, purchase, signer=key("agent-1"))),
        ("key_binding", close(root, merchant.agent, purchase, sd_hash="AAAA")),
        ("aud", close(root, merchant.agent, purchase, aud="https://another-merchant.test")),
        ("nonce", close(root, merchant.agent, purchase, nonce="not-the-checkout-nonce")),
        ("expired", close(merchant.mandate(RANGE, exp=int(time.time()) - 3600), merchant.agent, purchase)),
        ("expired", close(root, merchant.agent, purchase, iat=int(time.time()) - 7200)),
        ("checkout_hash", close(root, merchant.agent, Purchase(purchase.merchant_id, other.checkout_hash,
                                                               purchase.nonce, 1500))),
        ("payment_amount", close(root, merchant.agent, Purchase(purchase.merchant_id, purchase.checkout_hash,
                                                                purchase.nonce, 1499))),
        ("invalid_mandate", close(root, merchant.agent, purchase, mandate={"payee": {"id": "no name"}})),
        ("malformed", "not a chain"),
    ]
    for reason, chain in cases:
        assert await merchant.refused(purchase, chain) == reason, reason
    rejected = await events_of(bus, merchant.account, "mandate_event", 2 * len(cases))
    assert {e.get("reason") for e in rejected if e["action"] == "rejected"} == \
        {reason for reason, _ in cases}

    receipt = await merchant.present(purchase, close(root, merchant.agent, purchase))  # the checkout is still open
    assert receipt.checkout_id == purchase.id
    assert await merchant.refused(purchase, close(root, merchant.agent, purchase)) == "nonce_reused"


async def test_amount_range_and_allowed_payees(bus: BusClient, merchant: Merchant) -> None:
    small, big = await merchant.checkout(50), await merchant.checkout(6000)
    assert await merchant.refused(small, close(merchant.mandate(RANGE), merchant.agent, small)) == "amount_range"
    assert await merchant.refused(big, close(merchant.mandate(RANGE), merchant.agent, big)) == "amount_range"
    purchase = await merchant.checkout(1500)
    elsewhere = merchant.mandate(RANGE, {"type": "payment.allowed_payees", "allowed": [
        {"id": "another-merchant", "name": "Another"}]})
    assert await merchant.refused(purchase, close(elsewhere, merchant.agent, purchase)) == "allowed_payees"


async def test_budget_is_the_sum_of_purchases_and_recurrence_is_kept(bus: BusClient, merchant: Merchant) -> None:
    budget = {"type": "payment.budget", "currency": "USD", "max": 2500}
    root = merchant.mandate(RANGE, budget, ON_DEMAND)
    first, second = await merchant.checkout(1500), await merchant.checkout(1500)
    await merchant.present(first, close(root, merchant.agent, first))
    assert await merchant.refused(second, close(root, merchant.agent, second)) == "budget"
    third = await merchant.checkout(1000)  # exactly what is left
    await merchant.present(third, close(root, merchant.agent, third))

    once = merchant.mandate(RANGE)  # no recurrence: it pays once
    a, b = await merchant.checkout(200), await merchant.checkout(200)
    await merchant.present(a, close(once, merchant.agent, a))
    assert await merchant.refused(b, close(once, merchant.agent, b)) == "recurrence"
    twice = merchant.mandate(RANGE, {"type": "payment.agent_recurrence", "frequency": "ON_DEMAND",
                                     "max_occurrences": 2})
    purchases = [await merchant.checkout(200) for _ in range(3)]
    for purchase in purchases[:2]:
        await merchant.present(purchase, close(twice, merchant.agent, purchase))
    assert await merchant.refused(purchases[2], close(twice, merchant.agent, purchases[2])) == "recurrence"
    daily = merchant.mandate(RANGE, {"type": "payment.agent_recurrence", "frequency": "DAILY"})
    c, d = await merchant.checkout(200), await merchant.checkout(200)
    await merchant.present(c, close(daily, merchant.agent, c))
    assert await merchant.refused(d, close(daily, merchant.agent, d)) == "recurrence"


async def test_racing_purchases_cannot_exceed_the_budget(bus: BusClient, merchant: Merchant) -> None:
    root = merchant.mandate(RANGE, {"type": "payment.budget", "currency": "USD", "max": 3000}, ON_DEMAND)
    purchases = [await merchant.checkout(1200) for _ in range(4)]
    outcomes = await asyncio.gather(*(merchant.present(p, close(root, merchant.agent, p)) for p in purchases),
                                    return_exceptions=True)
    paid = [o for o in outcomes if not isinstance(o, BaseException)]
    refusals = [o for o in outcomes if isinstance(o, MandateRefused)]
    assert len(paid) == 2 and len(refusals) == 2, outcomes  # 2 x 1200 fit in 3000, a third does not
    assert {r.details["reason"] for r in refusals} == {"budget"}


async def test_the_trust_list_takes_only_public_p256_keys_with_kids(bus: BusClient, merchant: Merchant) -> None:
    ctx = merchant.account.ctx
    private = json.loads(key("k").export_private())
    for bad in ({"keys": []}, {"keys": [private]}, {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "kid": "r"}]},
                {"keys": [{k: v for k, v in json.loads(key("k").export_public()).items() if k != "kid"}]}):
        with pytest.raises(InvalidRequest):
            await bus.request(AP2_TRUST_ADD, {"issuer": "bad", "jwks": bad}, ctx)
    listed = await bus.request(AP2_TRUST_LIST, {}, ctx)
    assert [item.kids for item in listed.items] == [["cp-1"]]


async def test_the_events_name_the_stored_mandates_also_when_an_open_mandate_pays_again(
    bus: BusClient, merchant: Merchant, admin: asyncpg.Connection  # noqa: F811
) -> None:
    """A payment's events are staged by the statement that stores its mandates, with the ids it gives them; an open
    mandate accepted before keeps its id, and then the events name that one (staged after the statement)."""
    root = merchant.mandate(RANGE, ON_DEMAND)
    first, second = await merchant.checkout(300), await merchant.checkout(400)
    receipts = [await merchant.present(p, close(root, merchant.agent, p)) for p in (first, second)]
    org = merchant.account.org_id
    [open_id] = [row["id"] for row in await admin.fetch(
        "SELECT id FROM commerce.ap2_mandates WHERE org_id = $1 AND kind = 'open'", org)]
    events = [*await events_of(bus, merchant.account, "payment_event", 2),
              *await events_of(bus, merchant.account, "mandate_event", 4)]
    for receipt in receipts:
        named = [e for e in events if e["receiptId"] == str(receipt.id)]
        assert sorted(e.get("action", "payment") for e in named) == ["payment", "presented", "verified"]
        assert {(e["mandateId"], e["openMandateId"]) for e in named} == {(str(receipt.mandate_id), str(open_id))}
