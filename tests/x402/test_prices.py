"""x402 prices in commerce, over the real bus: set, list, resolve without a key, delete; org-scoped, owners only."""

import asyncio
import time
from typing import Any
from uuid import uuid4

import httpx
import pytest

from shared.contracts.commerce.x402 import (
    X402_PRICE_DELETE,
    X402_PRICE_LIST,
    X402_PRICE_RESOLVE,
    X402_PRICE_SET,
    PriceNotFound,
)
from shared.contracts.eventlog import QUERY as EVENT_QUERY
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Forbidden, InvalidRequest
from shared.runtime.client import BusClient
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, add_member, create_org, owner  # noqa: F401 (fixtures)

PAY_TO = "0x" + "ab" * 20
ASSET = "0x" + "cd" * 20
CHAIN = {"network": "eip155:84532", "asset": ASSET, "asset_name": "USDC", "asset_version": "2"}


async def events_of(bus: BusClient, account: Account, event_type: str, count: int,
                    timeout: float = 15.0) -> list[dict[str, Any]]:
    """The metadata of the org's events of a type, once there are `count` of them (events arrive through the log)."""
    deadline = time.monotonic() + timeout
    while True:
        page = await bus.request(EVENT_QUERY, {"types": [event_type], "limit": 1000}, account.ctx)
        found = [event.metadata for event in page.events]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, [(m.get("status"), m.get("action")) for m in found]
            return found
        await asyncio.sleep(0.1)


@pytest.fixture
async def seller(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    return await create_org(bus, platform)


async def test_set_list_resolve_delete(bus: BusClient, seller: Account) -> None:
    price = await bus.request(X402_PRICE_SET, {"resource": "knowledge/search", "amount": 10_000, "pay_to": PAY_TO,
                                               "description": "search my notes", **CHAIN}, seller.ctx)
    assert (price.amount, price.pay_to, price.network, price.asset) == (10_000, PAY_TO, "eip155:84532", ASSET)
    assert price.org_id == seller.org_id and price.org_slug and price.requirement_extra() == {"name": "USDC",
                                                                                               "version": "2"}
    again = await bus.request(X402_PRICE_SET, {"resource": "knowledge/search", "amount": 20_000, "pay_to": PAY_TO,
                                               **CHAIN}, seller.ctx)
    assert again.amount == 20_000 and again.updated_at >= price.updated_at
    listed = await bus.request(X402_PRICE_LIST, {}, seller.ctx)
    assert [(p.resource, p.amount) for p in listed.prices] == [("knowledge/search", 20_000)]

    for ref in (price.org_slug, str(seller.org_id)):  # no auth context: the payer has no key
        found = await bus.request(X402_PRICE_RESOLVE, {"org": ref, "resource": "knowledge/search"},
                                  protocol=Protocol.X402)
        assert (found.org_id, found.amount) == (seller.org_id, 20_000)
    with pytest.raises(PriceNotFound):
        await bus.request(X402_PRICE_RESOLVE, {"org": price.org_slug, "resource": "agents/none/chat"})

    removed = await bus.request(X402_PRICE_DELETE, {"resource": "knowledge/search"}, seller.ctx)
    assert removed.deleted
    with pytest.raises(PriceNotFound):
        await bus.request(X402_PRICE_RESOLVE, {"org": price.org_slug, "resource": "knowledge/search"})
    with pytest.raises(PriceNotFound):
        await bus.request(X402_PRICE_DELETE, {"resource": "knowledge/search"}, seller.ctx)

    seen = await events_of(bus, seller, "price_event", 3)
    assert all(m["action"] == "changed" and m["protocol"] == "x402" for m in seen)


async def test_defaults_come_from_the_facilitator(bus: BusClient, seller: Account) -> None:
    price = await bus.request(X402_PRICE_SET, {"resource": f"products/{uuid4()}/content", "amount": 5,
                                               "pay_to": PAY_TO}, seller.ctx)
    assert price.network.startswith("eip155:") and price.asset.startswith("0x") and price.asset_name


async def test_prices_are_the_orgs_own(bus: BusClient, seller: Account, platform: Account) -> None:  # noqa: F811
    other = await create_org(bus, platform)
    await bus.request(X402_PRICE_SET, {"resource": "agents/helper/chat", "amount": 7, "pay_to": PAY_TO, **CHAIN},
                      seller.ctx)
    assert (await bus.request(X402_PRICE_LIST, {}, other.ctx)).prices == []
    with pytest.raises(PriceNotFound):
        await bus.request(X402_PRICE_DELETE, {"resource": "agents/helper/chat"}, other.ctx)
    assert len((await bus.request(X402_PRICE_LIST, {}, seller.ctx)).prices) == 1


async def test_only_who_may_update_prices_sets_them(bus: BusClient, seller: Account) -> None:
    member = await add_member(bus, seller)  # org_user: may read and list, not price
    with pytest.raises(Forbidden):
        await bus.request(X402_PRICE_SET, {"resource": "knowledge/search", "amount": 1, "pay_to": PAY_TO, **CHAIN},
                          member.ctx)
    with pytest.raises(Forbidden):
        await bus.request(X402_PRICE_DELETE, {"resource": "knowledge/search"}, member.ctx)
    assert (await bus.request(X402_PRICE_LIST, {}, member.ctx)).prices == []


@pytest.mark.parametrize("change", [
    {"resource": "knowledge/other"}, {"resource": "products/not-a-uuid/content"}, {"amount": 0}, {"amount": -5},
    {"pay_to": "0x12"}, {"network": "base sepolia"}, {"max_timeout_seconds": 1}, {"org_id": "x"},
])
async def test_bad_prices_are_refused(bus: BusClient, seller: Account, change: dict) -> None:
    body = {"resource": "knowledge/search", "amount": 1, "pay_to": PAY_TO, **CHAIN, **change}
    with pytest.raises(InvalidRequest):
        await bus.request(X402_PRICE_SET, body, seller.ctx)
    assert (await bus.request(X402_PRICE_LIST, {}, seller.ctx)).prices == []


async def test_prices_from_the_cli(one: Cli) -> None:  # noqa: F811
    shown = (await one("x402", "price", "set", "knowledge/search", "0.25", "--pay-to", PAY_TO, "--network",
                       "eip155:84532", "--asset", ASSET, "--asset-name", "USDC", "--asset-version", "2",
                       "--description", "notes", "--json")).json()
    assert (shown["amount"], shown["resource"], shown["description"]) == (250_000, "knowledge/search", "notes")
    listed = (await one("x402", "price", "list")).ok()
    assert "knowledge/search" in listed and "0.25" in listed and f"/x402/{shown['org_slug']}/knowledge/search" in listed
    (await one("x402", "price", "set", "knowledge/search", "7", "--units", "--pay-to", PAY_TO, "--network",
               "eip155:84532", "--asset", ASSET, "--asset-name", "USDC", "--asset-version", "2")).ok()
    assert (await one("x402", "price", "list", "--json")).json()["prices"][0]["amount"] == 7
    assert (await one("x402", "price", "delete", "knowledge/search", "--json")).json()["deleted"] is True
    assert "no prices" in (await one("x402", "price", "list")).ok()
    one_line_error(await one("x402", "price", "set", "knowledge/search", "0.0000001", "--pay-to", PAY_TO), 2,
                   "decimals")
    one_line_error(await one("x402", "price", "delete", "knowledge/search"), 5, "knowledge/search")


async def test_prices_over_http_with_the_orgs_key(gateway: str, bus: BusClient, seller: Account) -> None:  # noqa: F811
    headers = {"Authorization": f"Bearer {seller.key}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30) as http:
        body = {"resource": "agents/helper/chat", "amount": 3, "pay_to": PAY_TO, **CHAIN}
        put = await http.put("/v1/x402/prices", json=body)
        assert put.status_code == 200 and put.json()["resource"] == "agents/helper/chat", put.text
        assert [p["resource"] for p in (await http.get("/v1/x402/prices")).json()["prices"]] == ["agents/helper/chat"]
        assert (await http.delete("/v1/x402/prices/agents/helper/chat")).json() == {"resource": "agents/helper/chat",
                                                                                    "deleted": True}
        assert (await http.delete("/v1/x402/prices/agents/helper/chat")).status_code == 404
        assert (await http.put("/v1/x402/prices", json={**body, "amount": 0})).status_code == 422
    member = await add_member(bus, seller)
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {member.key}"}) as http:
        assert (await http.put("/v1/x402/prices", json=body)).status_code == 403
