"""AP2 v2, the credential provider's side and the REST surface, on the real stack: a person of org A grants its
agent an open mandate over HTTP, signed with A's published issuer key; org B trusts A's JWKS (fetched over
HTTP) and is paid through a chain closed with the agent's key; a refusal is problem+json naming the reason.
"""

import base64
import json
from typing import Any

import asyncpg
import httpx
import pytest
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

from services.commerce import keys
from services.commerce.ap2 import schemas
from shared.contracts.commerce.ap2 import AP2_GRANT
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Forbidden, NotFound
from shared.runtime.client import BusClient
from shared.runtime.context import service_identity
from shared.runtime.service import ServiceRuntime
from tests.agents.agent_fixtures import make_agent
from tests.ap2.chains import Purchase, close
from tests.gateway.conftest import assert_problem, caller_for  # noqa: F401 (fixture)
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account, admin  # noqa: F401 (fixtures)
from tests.x402.test_prices import events_of

RANGE = {"type": "payment.amount_range", "currency": "USD", "max": 5000}


async def agent_key(admin: asyncpg.Connection, services: dict[str, ServiceRuntime], org_id: Any,  # noqa: F811
                    agent_id: Any) -> JWK:
    """The agent's private key, opened from its sealed row (what the shopping-agent tool will sign with)."""
    row = await admin.fetchrow("SELECT key_sealed, public_jwk FROM commerce.ap2_keys WHERE org_id = $1 AND "
                               "role = 'agent' AND owner_id = $2", org_id, agent_id)
    private = await keys.open_sealed(services["commerce"], keys.AP2_KEY, org_id, bytes(row["key_sealed"]))
    assert b'"d"' not in bytes(row["key_sealed"]) and '"d"' not in row["public_jwk"]
    return JWK.from_json(private.decode())


async def test_a_person_grants_an_agent_a_mandate_another_org_accepts(
    bus: BusClient, gateway: str, owner: Account, stranger: Account,  # noqa: F811
    admin: asyncpg.Connection, services: dict[str, ServiceRuntime]  # noqa: F811
) -> None:
    buyer, shop = await caller_for(gateway, owner), await caller_for(gateway, stranger)
    agent = await make_agent(bus, owner, "openai:unused", deploy=False)
    granted = await buyer.http.post("/v1/ap2/mandates", json={"agent_id": str(agent.id), "constraints": [
        RANGE, {"type": "payment.budget", "currency": "USD", "max": 4000},
        {"type": "payment.agent_recurrence", "frequency": "ON_DEMAND"}]})
    assert granted.status_code == 201, granted.text
    mandate = granted.json()
    assert schemas.errors(schemas.OPEN_PAYMENT, mandate["mandate"]) == []

    async with httpx.AsyncClient(base_url=gateway) as public:
        published = (await public.get(f"/v1/ap2/{owner.org_id}/jwks.json")).json()
    root = mandate["credential"]
    kid = json.loads(base64.urlsafe_b64decode(root.split(".")[0] + "=="))["kid"]
    [issuer_jwk] = [k for k in published["keys"] if k["kid"] == kid]
    claims = SDJWTVerifier(root, lambda _iss, _header: JWK(**issuer_jwk)).get_verified_payload()
    assert claims["delegate_payload"] == [mandate["mandate"]]
    key = await agent_key(admin, services, owner.org_id, agent.id)
    assert mandate["mandate"]["cnf"]["jwk"]["x"] == json.loads(key.export_public())["x"]

    trusted = await shop.http.post("/v1/ap2/trust", json={"issuer": mandate["issuer"], "jwks": published})
    assert trusted.status_code == 201, trusted.text
    made = (await shop.http.post("/v1/ap2/checkouts", json={"amount": 2500, "currency": "USD"})).json()
    purchase = Purchase(made["merchant_id"], made["checkout_hash"], made["nonce"], 2500, id=made["id"])
    paid = await shop.http.post(f"/v1/ap2/checkouts/{made['id']}/mandate", json={"mandate": close(root, key, purchase)})
    assert paid.status_code == 201, paid.text
    fetched = await shop.http.get(f"/v1/ap2/receipts/{paid.json()['id']}")
    assert fetched.json()["receipt_jwt"] == paid.json()["receipt_jwt"]
    assert (await buyer.http.get(f"/v1/ap2/receipts/{paid.json()['id']}")).status_code == 404  # B's, not A's

    again = (await shop.http.post("/v1/ap2/checkouts", json={"amount": 2000, "currency": "USD"})).json()
    over = Purchase(again["merchant_id"], again["checkout_hash"], again["nonce"], 2000, id=again["id"])
    refused = await shop.http.post(f"/v1/ap2/checkouts/{again['id']}/mandate", json={"mandate": close(root, key, over)})
    body = assert_problem(refused, 403, "mandate_refused")
    assert body["details"]["reason"] == "budget"

    [created] = await events_of(bus, owner, "mandate_event", 1)
    assert created["action"] == "created" and created["protocol"] == "ap2" and created["mandateType"] == "open"
    await buyer.http.aclose()
    await shop.http.aclose()


async def test_only_a_person_grants_and_only_to_the_orgs_own_agent(
    bus: BusClient, gateway: str, owner: Account, stranger: Account  # noqa: F811
) -> None:
    agent = await make_agent(bus, owner, "openai:unused", deploy=False)
    body = {"agent_id": str(agent.id), "constraints": [RANGE]}
    with pytest.raises(Forbidden):
        await bus.request(AP2_GRANT, body, service_identity("agents", owner.org_id, ("mandates:create",)),
                          protocol=Protocol.AP2)
    with pytest.raises(NotFound):  # another org's agent
        await bus.request(AP2_GRANT, body, stranger.ctx, protocol=Protocol.AP2)
    buyer = await caller_for(gateway, owner)
    bad = await buyer.http.post("/v1/ap2/mandates", json={**body, "constraints": [{"type": "payment.amount_range"}]})
    assert_problem(bad, 422)
    no_key = await buyer.http.get(f"/v1/ap2/{stranger.org_id}/jwks.json")  # an org with no keys publishes none
    assert no_key.status_code == 200 and no_key.json() == {"keys": []}
    await buyer.http.aclose()
