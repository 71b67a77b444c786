"""An agent's A2A URL names its org by slug (`/a2a/{org slug}/{agent slug}`, what its card says), and the org's id
still answers; the slug comes from tenancy's public lookup (`tenancy.organization.resolve_public`: no auth, the id,
slug and name only), which the gateway caches. The official a2a-sdk client over real HTTP on both URL forms."""

import httpx
import pytest
from a2a.types.a2a_pb2 import GetTaskRequest, TaskState

from shared.contracts.tenancy import ORG_GET, ORG_RESOLVE_PUBLIC
from shared.kernel.errors import NotFound
from shared.runtime.client import BusClient
from tests.a2a.conftest import Published, a2a_client, fetch_card
from tests.a2a.test_server_states import ask, send
from tests.tenancy.conftest import Account


async def test_the_public_lookup_says_only_id_slug_and_name(bus: BusClient, gateway: str, owner: Account) -> None:
    org = await bus.request(ORG_GET, {}, owner.ctx)
    public = {"id": str(org.id), "slug": org.slug, "name": org.name}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:  # no key: the route is public
        for ref in (org.slug, str(org.id)):
            found = await bus.request(ORG_RESOLVE_PUBLIC, {"ref": ref})  # no auth context at all
            assert found.model_dump(mode="json") == public
            answered = await http.get(f"/v1/public/orgs/{ref}")
            assert answered.status_code == 200 and answered.json() == public
        for unknown in ("no-such-org-anywhere", "00000000-0000-7000-8000-000000000000"):
            with pytest.raises(NotFound):
                await bus.request(ORG_RESOLVE_PUBLIC, {"ref": unknown})
            answered = await http.get(f"/v1/public/orgs/{unknown}")
            assert answered.status_code == 404 and answered.headers["content-type"].startswith("application/problem")


async def test_the_card_names_the_slug_form_and_the_id_form_answers_too(bus: BusClient, gateway: str,
                                                                      published: Published) -> None:
    org = await bus.request(ORG_GET, {}, published.account.ctx)
    assert published.base_url == f"{gateway}/a2a/{org.slug}/{published.slug}"
    by_id = Published(published.account, published.slug, f"{gateway}/a2a/{org.id}/{published.slug}",
                      published.script)
    for agent in (published, by_id):
        card = await fetch_card(agent)
        assert {i.url for i in card.supported_interfaces} == {published.base_url}
    for binding in ("JSONRPC", "HTTP+JSON"):
        async with a2a_client(published, binding) as client:
            task = await send(client, ask("Hello by slug"))
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
        async with httpx.AsyncClient(headers=published.headers(), timeout=60) as http:  # the same task, by id
            found = await http.get(f"{by_id.base_url}/tasks/{task.id}", headers={"A2A-Version": "1.0"})
        assert found.status_code == 200 and found.json()["id"] == task.id
    async with a2a_client(by_id) as client:
        assert (await client.get_task(GetTaskRequest(id=task.id))).id == task.id


async def test_an_unknown_org_is_404_and_another_orgs_slug_is_refused(gateway: str, published: Published,
                                                                      stranger: Account) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
    unknown = published.base_url.replace("/a2a/", "/a2a/zz-no-such-org-")
    async with httpx.AsyncClient(timeout=30, headers={"A2A-Version": "1.0"}) as http:
        assert (await http.get(f"{unknown}/.well-known/agent-card.json")).status_code == 404
        assert (await http.post(unknown, json=body, headers=published.headers())).status_code == 404
        too_long = f"{gateway}/a2a/{'x' * 80}/{published.slug}/.well-known/agent-card.json"
        assert (await http.get(too_long)).status_code == 404
        other = await http.post(published.base_url, json=body, headers=published.headers(stranger.key))
        assert other.status_code == 403 and other.headers["content-type"].startswith("application/problem+json")
