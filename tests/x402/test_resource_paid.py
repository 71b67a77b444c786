"""The x402 resource server at the gateway, over real HTTP, paid with the OFFICIAL x402 client.

The payer is an `eth_account` wallet funded on the local EVM (commerce's in-process chain, an EIP-3009
token in Vyper); the seller is an org that priced a resource; the facilitator is commerce's, over the
bus. Balances are read ON THE CHAIN (`commerce.chain.balance`), never from our own records.
"""

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account as EthAccount
from x402 import x402Client
from x402.http.clients.httpx import x402AsyncTransport
from x402.http.utils import decode_payment_required_header, decode_payment_response_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner

from services.gateway.api import create_app
from services.gateway.server import serve
from services.gateway.settings import GatewaySettings
from shared.contracts.commerce.facilitator import CHAIN_BALANCE, CHAIN_FUND
from shared.contracts.commerce.x402 import X402_PRICE_SET, Price
from shared.contracts.eventlog import REVENUE
from shared.contracts.graph import THING_CREATE
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.cli.conftest import Cli, one  # noqa: F401 (fixture)
from tests.gateway.conftest import assert_problem  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, create_org, owner  # noqa: F401 (fixtures)
from tests.x402.test_prices import events_of

PRICE = 10_000  # 0.01 of a 6-decimal token
FUNDS = 1_000_000


@pytest.fixture
async def seller(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    return await create_org(bus, platform)


@pytest.fixture
async def product(bus: BusClient, seller: Account) -> str:
    thing = await bus.request(THING_CREATE, {"type": "digital_product", "name": "Field guide",
                                             "properties": {"content": "the secret of the field"}}, seller.ctx)
    return str(thing.id)


@pytest.fixture
async def price(bus: BusClient, seller: Account, product: str) -> Price:
    merchant = EthAccount.create().address
    return await bus.request(X402_PRICE_SET, {"resource": f"products/{product}/content", "amount": PRICE,
                                              "pay_to": merchant, "description": "the guide"}, seller.ctx)


@pytest.fixture
async def payer(bus: BusClient, seller: Account) -> Any:
    wallet = EthAccount.create()
    await bus.request(CHAIN_FUND, {"address": wallet.address, "amount": FUNDS}, seller.ctx)
    return wallet


@pytest.fixture
async def http(gateway: str) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        yield client


def paying_client(gateway: str, wallet: Any, price: Price) -> httpx.AsyncClient:  # noqa: F811
    """The official client: x402Client, the exact EVM scheme with an eth_account signer, its httpx transport;
    allowed to spend the price's token (not a default asset of x402's), up to the price."""
    client = register_exact_evm_client(x402Client(), EthAccountSigner(wallet)).set_spend_controls(
        {"allowed_assets": [{"network": price.network, "asset": price.asset, "max_amount_per_payment": str(PRICE)}]})
    return httpx.AsyncClient(base_url=gateway, timeout=30, transport=x402AsyncTransport(client))


async def balance(bus: BusClient, account: Account, address: str) -> int:
    return (await bus.request(CHAIN_BALANCE, {"address": address}, account.ctx)).balance


def url(price: Price) -> str:
    return f"/x402/{price.org_slug}/{price.resource}"


async def test_unpaid_is_402_with_payment_required(bus: BusClient, http: httpx.AsyncClient, seller: Account,
                                                   price: Price) -> None:
    response = await http.get(url(price))
    assert_problem(response, 402, "payment_required")
    required = decode_payment_required_header(response.headers["PAYMENT-REQUIRED"])
    wire = json.loads(base64.b64decode(response.headers["PAYMENT-REQUIRED"]))
    assert wire["x402Version"] == 2 and required.x402_version == 2
    [accept] = wire["accepts"]
    assert accept["scheme"] == "exact" and accept["network"] == price.network and accept["network"].startswith("eip155:")
    assert (accept["asset"], accept["amount"], accept["payTo"]) == (price.asset, str(PRICE), price.pay_to)
    assert accept["maxTimeoutSeconds"] == price.max_timeout_seconds
    assert accept["extra"]["name"] == price.asset_name and accept["extra"]["version"] == price.asset_version
    assert wire["resource"]["url"].endswith(url(price))
    [requested] = await events_of(bus, seller, "payment_event", 1)
    assert requested["status"] == "requested" and requested["protocol"] == "x402"
    assert (requested["amount"], requested["amountAtomic"], requested["pricedResource"]) == (
        "0.01", str(PRICE), price.resource)


async def test_paid_with_the_official_client(bus: BusClient, gateway: str, seller: Account, price: Price,  # noqa: F811
                                             payer: Any) -> None:
    before = await balance(bus, seller, price.pay_to)
    async with paying_client(gateway, payer, price) as client:
        response = await client.get(url(price))
    assert response.status_code == 200, response.text
    assert response.json()["content"] == "the secret of the field"
    settled = decode_payment_response_header(response.headers["PAYMENT-RESPONSE"])
    assert settled.success and settled.transaction.startswith("0x") and settled.network == price.network
    assert settled.payer and settled.payer.lower() == payer.address.lower()
    assert await balance(bus, seller, payer.address) == FUNDS - PRICE
    assert await balance(bus, seller, price.pay_to) == before + PRICE

    statuses = [m["status"] for m in await events_of(bus, seller, "payment_event", 3)]
    assert sorted(statuses) == ["processed", "requested", "verified"], statuses
    now = datetime.now(UTC)
    revenue = await bus.request(REVENUE, {"since": now - timedelta(hours=1), "until": now + timedelta(hours=1)},
                                seller.ctx)
    assert revenue.by_protocol.get("x402") and float(revenue.by_protocol["x402"]) == PRICE / 10**6


async def test_unpriced_and_malformed_are_not_sold(http: httpx.AsyncClient, price: Price) -> None:
    assert_problem(await http.get(f"/x402/{price.org_slug}/products/{'0' * 8}-0000-0000-0000-{'0' * 12}/content"),
                   404, "price_not_found")
    assert_problem(await http.get(f"/x402/no-such-org-{price.org_id.hex[:8]}/{price.resource}"), 404,
                   "price_not_found")
    assert_problem(await http.get(f"/x402/{price.org_slug}/products/nope/content"), 422)
    assert_problem(await http.post(f"/x402/{price.org_slug}/knowledge/search", json={"k": 3}), 422)


async def test_money_before_goods_a_missing_product_is_not_charged(
        bus: BusClient, gateway: str, seller: Account, payer: Any) -> None:  # noqa: F811
    """Priced, but the product is gone: refused before the payment is settled, the payer keeps the money."""
    missing = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    price = await bus.request(X402_PRICE_SET, {"resource": f"products/{missing}/content", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, seller.ctx)
    async with paying_client(gateway, payer, price) as client:
        response = await client.get(url(price))
    assert response.status_code == 404, response.text
    assert await balance(bus, seller, payer.address) == FUNDS


@pytest.fixture
async def second_gateway(services: Any, bus: BusClient, settings: Settings) -> AsyncIterator[str]:
    """Another replica of the gateway, on its own port, with its own caches: only commerce is shared."""
    state = await serve(create_app(bus, GatewaySettings(**settings.model_dump())), "127.0.0.1", 0)
    yield state.url
    state.server.should_exit = True
    await state.task


async def test_an_org_cannot_sell_what_is_another_orgs(bus: BusClient, gateway: str, platform: Account,  # noqa: F811
                                                       product: str, payer: Any) -> None:
    """Org A prices org B's product id under its own name: the paid request reads in A's org, finds nothing,
    and the payer is not charged (the product is checked before the payment is settled)."""
    thief = await create_org(bus, platform)
    price = await bus.request(X402_PRICE_SET, {"resource": f"products/{product}/content", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, thief.ctx)
    async with paying_client(gateway, payer, price) as client:
        response = await client.get(url(price))
    assert_problem(response, 404)
    assert "secret" not in response.text
    assert await balance(bus, thief, payer.address) == FUNDS


async def test_one_events_revenue_shows_x402(bus: BusClient, gateway: str, one: Cli, owner: Account,  # noqa: F811
                                             payer: Any) -> None:
    thing = await bus.request(THING_CREATE, {"type": "digital_product", "name": "Map",
                                             "properties": {"content": "north is up"}}, owner.ctx)
    price = await bus.request(X402_PRICE_SET, {"resource": f"products/{thing.id}/content", "amount": PRICE,
                                               "pay_to": EthAccount.create().address}, owner.ctx)
    async with paying_client(gateway, payer, price) as client:
        assert (await client.get(url(price))).status_code == 200
    await events_of(bus, owner, "payment_event", 3)  # requested, verified, processed: through the log
    rows = (await one("events", "revenue", "--json")).json()
    [x402] = [row for row in rows if row["protocol"] == "x402"]
    assert float(x402["total"]) == PRICE / 10**6 and x402["count"] == 1
    assert "x402" in (await one("events", "revenue")).ok()
