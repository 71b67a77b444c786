"""Authentication at the edge: 401 without a valid key (revocation within the cache TTL), 403 by role."""

import asyncio

import httpx

from shared.contracts.tenancy import KEY_CREATE, KEY_REVOKE
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.gateway.conftest import KEY_CACHE_TTL, Caller, assert_problem, caller_for
from tests.tenancy.conftest import account, add_member


def assert_401(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


class TestUnauthenticated:
    async def test_no_key(self, http: httpx.AsyncClient) -> None:
        assert_401(await http.get("/v1/things"))
        assert_401(await http.post("/v1/things", json={"type": "blog_post", "name": "x"}))

    async def test_a_garbage_key(self, http: httpx.AsyncClient) -> None:
        for key in ("garbage", "one_live_000000000000_" + "x" * 40, "Bearer"):
            assert_401(await http.get("/v1/things", headers={"Authorization": f"Bearer {key}"}))
            assert_401(await http.get("/v1/things", headers={"X-API-Key": key}))

    async def test_a_revoked_key_stops_working_within_the_cache_ttl(
        self, gateway: str, bus: BusClient, alice: Caller
    ) -> None:
        issued = await bus.request(KEY_CREATE, {"name": "soon revoked"}, alice.account.ctx)
        holder = await caller_for(gateway, await account(bus, issued.key))
        async with holder.http:
            assert (await holder.call("GET", "/v1/things")).status_code == 200
            await bus.request(KEY_REVOKE, {"key_id": issued.info.key_id}, alice.account.ctx)
            await asyncio.sleep(KEY_CACHE_TTL + 0.2)
            assert_401(await holder.call("GET", "/v1/things"))
        assert (await alice.call("GET", "/v1/things")).status_code == 200  # the owner's own key is untouched


class TestForbidden:
    async def test_a_customer_reads_but_may_not_create_things(self, gateway: str, bus: BusClient, alice: Caller) -> None:
        customer = await caller_for(gateway, await add_member(bus, alice.account, role="customer"))
        async with customer.http:
            assert (await customer.call("GET", "/v1/things")).status_code == 200
            assert_problem(await customer.call("POST", "/v1/things", {"type": "blog_post", "name": "x"}), 403)

    async def test_a_read_only_key_may_not_write(self, gateway: str, bus: BusClient, alice: Caller) -> None:
        issued = await bus.request(KEY_CREATE, {"name": "reader", "scopes": ["things:read", "things:list"]},
                                   alice.account.ctx)
        reader = await caller_for(gateway, await account(bus, issued.key))
        async with reader.http:
            assert (await reader.call("GET", "/v1/things")).status_code == 200
            assert_problem(await reader.call("POST", "/v1/things", {"type": "blog_post", "name": "x"}), 403)


class TestServedByTheService:
    async def test_the_gateway_service_serves_http_from_its_start_hook(
        self, services: dict[str, ServiceRuntime], alice: Caller
    ) -> None:
        """The session's `gateway` runtime (port 0) runs uvicorn on its own bus connection, as `one serve gateway`."""
        url = services["gateway"].state.url
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": alice.account.key}) as client:
            assert (await client.get("/v1/things")).status_code == 200
            assert_401(await client.get("/v1/things", headers={"X-API-Key": "nope"}))
