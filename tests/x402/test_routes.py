"""Any route an org prices (`PRICEABLE_ROUTES`), over real HTTP with the OFFICIAL x402 client.

A price names an allow-listed route template (`v1/things/{id}`: every thing) or one concrete path of it
(`v1/things/<id>`, winning over the template); the gateway finds it by the route it matched, settles on
the local chain, and serves what the `/v1` route would, in the seller's org, as the `x402` identity with
the route's one read permission. Balances are read on the chain.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from eth_account import Account as EthAccount
from x402.http.utils import decode_payment_required_header, decode_payment_response_header

from services.gateway.api import create_app
from services.gateway.server import serve
from services.gateway.settings import GatewaySettings
from shared.contracts.commerce.x402 import PRICEABLE_ROUTES, X402_PRICE_SET, Price, priceable_route
from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE
from shared.contracts.knowledge import ITEM_ADD, LINK
from shared.kernel.errors import InvalidRequest
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.cli.conftest import Cli, one  # noqa: F401 (fixture)
from tests.gateway.conftest import assert_problem  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, create_org, owner  # noqa: F401 (fixtures)
from tests.x402.test_resource_paid import FUNDS, PRICE, balance, payer, paying_client, seller  # noqa: F401
from tests.x402.test_resource_refusals import header, reason_of, signed

PRICE_TTL = 1.0


async def priced(bus: BusClient, seller: Account, resource: str,  # noqa: F811
                 amount: int = PRICE, **more: Any) -> Price:
    return await bus.request(X402_PRICE_SET, {"resource": resource, "amount": amount,
                                              "pay_to": EthAccount.create().address, **more}, seller.ctx)


async def asked(http: httpx.AsyncClient, method: str, path: str, **options: Any) -> dict[str, Any]:
    """The 402's `PAYMENT-REQUIRED`, decoded (x402's model as JSON)."""
    response = await http.request(method, path, **options)
    assert_problem(response, 402, "payment_required")
    return decode_payment_required_header(response.headers["PAYMENT-REQUIRED"]).model_dump(by_alias=True)


@pytest.fixture
async def catalog(bus: BusClient, seller: Account) -> dict[str, str]:  # noqa: F811
    """A thing of the seller's with a neighbor and a knowledge item linked to it."""
    thing = await bus.request(THING_CREATE, {"type": "report", "name": "Tide table",
                                             "properties": {"port": "Brest"}}, seller.ctx)
    other = await bus.request(THING_CREATE, {"type": "report", "name": "Moon phases"}, seller.ctx)
    await bus.request(CONNECTION_CREATE, {"from_id": thing.id, "to_id": other.id, "type": "references"}, seller.ctx)
    [item] = (await bus.request(ITEM_ADD, {"knowledge_type": "chunk",
                                           "text": "High tide at Brest is at noon."}, seller.ctx)).items
    await bus.request(LINK, {"thing_id": thing.id, "knowledge_id": item.id, "role": "summary"}, seller.ctx)
    return {"thing": str(thing.id), "item": str(item.id)}


@pytest.fixture
async def quick_gateway(services: Any, bus: BusClient, settings: Settings) -> AsyncIterator[str]:
    """A gateway replica keeping prices `PRICE_TTL` seconds."""
    replica = GatewaySettings(**settings.model_dump(), gateway_x402_price_ttl=PRICE_TTL)
    state = await serve(create_app(bus, replica), "127.0.0.1", 0)
    yield state.url
    state.server.should_exit = True
    await state.task


async def test_a_configured_route_is_paid_and_served(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                                     payer: Any, catalog: dict[str, str]) -> None:  # noqa: F811
    price = await priced(bus, seller, "v1/things/{id}", description="a thing", mime_type="application/ld+json")
    assert (price.method, price.resource, price.mime_type) == ("GET", "v1/things/{id}", "application/ld+json")
    path = f"/x402/{price.org_slug}/v1/things/{catalog['thing']}"
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        required = await asked(http, "GET", path)
    [accept] = required["accepts"]
    assert (accept["amount"], accept["payTo"], accept["network"]) == (str(PRICE), price.pay_to, price.network)
    assert required["resource"]["mimeType"] == "application/ld+json" and required["resource"]["url"].endswith(path)

    async with paying_client(gateway, payer, price) as client:
        response = await client.get(path, params={"include": "references"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["thing"]["name"] == "Tide table" and body["thing"]["properties"] == {"port": "Brest"}
    assert decode_payment_response_header(response.headers["PAYMENT-RESPONSE"]).success
    assert await balance(bus, seller, payer.address) == FUNDS - PRICE
    assert await balance(bus, seller, price.pay_to) == PRICE


READS = [  # (resource priced, method, path under /x402/{org}/, body, what the answer holds)
    ("v1/things", "GET", "v1/things?type=report", None, lambda c, b: len(b["things"]) == 2),
    ("v1/things/{id}/neighbors", "GET", "v1/things/{thing}/neighbors", None, lambda c, b: len(b["neighbors"]) == 1),
    ("v1/things/{id}/knowledge", "GET", "v1/things/{thing}/knowledge", None,
     lambda c, b: [linked["item"]["id"] for linked in b["knowledge"]] == [c["item"]]),
    ("v1/knowledge/items", "GET", "v1/knowledge/items", None, lambda c, b: len(b["items"]) == 1),
    ("v1/knowledge/items/{id}", "GET", "v1/knowledge/items/{item}", None, lambda c, b: b["id"] == c["item"]),
    ("v1/knowledge/search", "POST", "v1/knowledge/search", {"query": "tide", "k": 3}, lambda c, b: "hits" in b),
    ("v1/knowledge/search/hybrid", "POST", "v1/knowledge/search/hybrid", {"query": "tide"}, lambda c, b: "hits" in b),
]


@pytest.mark.parametrize(("resource", "method", "path", "body", "holds"), READS, ids=[r[0] for r in READS])
async def test_each_allow_listed_read_is_sold(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                              payer: Any, catalog: dict[str, str],  # noqa: F811
                                              resource: str, method: str,
                                              path: str, body: Any, holds: Any) -> None:
    price = await priced(bus, seller, resource)
    async with paying_client(gateway, payer, price) as client:
        response = await client.request(method, f"/x402/{price.org_slug}/" + path.format(**catalog), json=body)
    assert response.status_code == 200, response.text
    assert holds(catalog, response.json()), response.json()
    assert await balance(bus, seller, payer.address) == FUNDS - PRICE


def test_the_allow_list_sells_reads_only() -> None:
    assert all(route.method in ("GET", "POST") for route in PRICEABLE_ROUTES)
    for refused in ("v1/things/{id}/archive", "v1/things/{id}/restore", "v1/connections", "v1/keys",
                    "v1/things/{thing}", "v1/things/NOT-AN-ID", "v1/agents/{slug}"):
        assert priceable_route(refused) is None, refused


@pytest.mark.parametrize("change", [{"resource": "v1/things/{id}/archive"}, {"resource": "v1/things/{id}/labels"},
                                    {"method": "POST"}, {"mime_type": "not a type"}])
async def test_a_route_off_the_list_is_refused(bus: BusClient, seller: Account, change: dict) -> None:  # noqa: F811
    with pytest.raises(InvalidRequest):
        await priced(bus, seller, **{"resource": "v1/things/{id}", **change})


async def test_a_paths_own_price_wins_over_its_routes(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                                      catalog: dict[str, str]) -> None:
    general = await priced(bus, seller, "v1/things/{id}", amount=PRICE)
    special = await priced(bus, seller, f"v1/things/{catalog['thing']}", amount=3 * PRICE)
    other = (await bus.request(THING_CREATE, {"type": "report", "name": "Charts"}, seller.ctx)).id
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        prefix = f"/x402/{general.org_slug}/v1/things"
        assert (await asked(http, "GET", f"{prefix}/{catalog['thing']}"))["accepts"][0]["payTo"] == special.pay_to
        assert (await asked(http, "GET", f"{prefix}/{catalog['thing'].upper()}"))["accepts"][0]["amount"] == str(
            3 * PRICE)  # the id as the route reads it, not as the URL spells it
        assert (await asked(http, "GET", f"{prefix}/{other}"))["accepts"][0]["amount"] == str(PRICE)


async def test_an_unpriced_route_is_not_sold(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                             catalog: dict[str, str]) -> None:
    price = await priced(bus, seller, "v1/things/{id}")
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        for path in ("v1/knowledge/items", f"v1/knowledge/items/{catalog['item']}",
                     f"v1/things/{catalog['thing']}/neighbors"):
            assert_problem(await http.get(f"/x402/{price.org_slug}/{path}"), 404, "price_not_found")
        assert_problem(await http.get(f"/x402/{price.org_slug}/v1/things/{catalog['thing']}/archive"), 404)
        assert_problem(await http.post(f"/x402/{price.org_slug}/v1/things/{catalog['thing']}/archive"), 404)
        assert_problem(await http.get(f"/x402/{price.org_slug}/v1/things", params={"limit": 0}), 422)


async def test_a_read_that_finds_nothing_is_not_charged(bus: BusClient, gateway: str, platform: Account,  # noqa: F811
                                                        seller: Account, payer: Any,  # noqa: F811
                                                        catalog: dict[str, str]) -> None:
    """Another org prices every thing of its own and is asked for the seller's: read in its org, not found, free."""
    thief = await create_org(bus, platform)
    price = await priced(bus, thief, "v1/things/{id}")
    async with paying_client(gateway, payer, price) as client:
        response = await client.get(f"/x402/{price.org_slug}/v1/things/{catalog['thing']}")
    assert_problem(response, 404)
    assert "Tide" not in response.text and "PAYMENT-RESPONSE" not in response.headers
    assert await balance(bus, thief, payer.address) == FUNDS


async def test_a_price_change_is_sold_once_the_cache_ttl_passed(bus: BusClient, quick_gateway: str,
                                                                seller: Account,  # noqa: F811
                                                                catalog: dict[str, str]) -> None:
    price = await priced(bus, seller, "v1/things/{id}", amount=PRICE)
    path = f"/x402/{price.org_slug}/v1/things/{catalog['thing']}"
    async with httpx.AsyncClient(base_url=quick_gateway, timeout=30) as http:
        assert (await asked(http, "GET", path))["accepts"][0]["amount"] == str(PRICE)
        await priced(bus, seller, "v1/things/{id}", amount=2 * PRICE)
        await asyncio.sleep(PRICE_TTL)
        assert (await asked(http, "GET", path))["accepts"][0]["amount"] == str(2 * PRICE)


async def test_a_replayed_payment_for_a_route_is_refused(bus: BusClient, gateway: str, seller: Account,  # noqa: F811
                                                         payer: Any, catalog: dict[str, str]) -> None:  # noqa: F811
    price = await priced(bus, seller, "v1/things/{id}")
    path = f"/x402/{price.org_slug}/v1/things/{catalog['thing']}"
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        needed = await http.get(path)
        payment = header(await signed(payer, decode_payment_required_header(needed.headers["PAYMENT-REQUIRED"])))
        assert (await http.get(path, headers=payment)).status_code == 200
        assert "replay" in reason_of(await http.get(path, headers=payment))
    assert await balance(bus, seller, payer.address) == FUNDS - PRICE


@pytest.mark.timeout(300)  # four `one` processes: seconds on a quiet machine, a minute on a shared one
async def test_route_prices_from_the_cli(one: Cli) -> None:  # noqa: F811
    routes = (await one("x402", "price", "routes")).ok()
    assert "v1/things/{id}" in routes and "agents/{slug}/chat" in routes
    pay_to = EthAccount.create().address
    shown = (await one("x402", "price", "set", "v1/things/{id}", "0.02", "--pay-to", pay_to, "--mime-type",
                       "application/ld+json", "--json")).json()
    assert (shown["method"], shown["amount"], shown["mime_type"]) == ("GET", 20_000, "application/ld+json")
    assert f"/x402/{shown['org_slug']}/v1/things/{{id}}" in (await one("x402", "price", "list")).ok()
    assert (await one("x402", "price", "delete", "v1/things/{id}", "--json")).json()["deleted"] is True
