"""The REST routes of `ap2.mandate.held` and `ap2.checkout.acp`, over real HTTP on the session's stack.

`GET /v1/ap2/mandates/held?agent_id=...`: a person of the org reads the active open mandates granted to one of
its agents, each with what remains of it; a revoked one is not there, another org reads nothing of them, and the
agent must be named. `POST /v1/ap2/acp/checkout_sessions/{session_id}/checkout`: the merchant signs an AP2
checkout JWT for its ACP session ready for payment (verifiable with its published JWKS); another org's session is
not found, a session not ready is a conflict, bad input a 422 problem.
"""

from typing import Any

import httpx

from shared.runtime.client import BusClient
from tests.acp.conftest import Merchant, create_body, merchant, total  # noqa: F401 (fixture)
from tests.agents.agent_fixtures import make_agent
from tests.ap2.test_e2e_a2a import BUDGET
from tests.ap2.test_merchant import verify_receipt
from tests.gateway.conftest import Caller, alice, assert_problem, bob, http  # noqa: F401 (fixtures)

HELD = "/v1/ap2/mandates/held"
ONCE_UP_TO_10 = [{"type": "payment.amount_range", "currency": "USD", "max": 1000}]


def sign(session_id: str) -> str:
    return f"/v1/ap2/acp/checkout_sessions/{session_id}/checkout"


async def granted(caller: Caller, agent_id: Any, constraints: list[dict[str, Any]]) -> str:
    made = await caller.call("POST", "/v1/ap2/mandates", {"agent_id": str(agent_id), "constraints": constraints})
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def test_a_person_reads_what_remains_of_an_agents_mandates(
    bus: BusClient, alice: Caller, bob: Caller  # noqa: F811
) -> None:
    agent = await make_agent(bus, alice.account, "openai:unused", deploy=False)
    once, budget, revoked = (await granted(alice, agent.id, ONCE_UP_TO_10), await granted(alice, agent.id, BUDGET),
                             await granted(alice, agent.id, BUDGET))
    assert (await alice.call("POST", f"/v1/ap2/mandates/{revoked}/revoke")).status_code == 200

    listed = await alice.call("GET", HELD, agent_id=str(agent.id))
    assert listed.status_code == 200, listed.text
    by_id = {m["id"]: m for m in listed.json()["items"]}
    assert set(by_id) == {once, budget}  # the revoked one is not held
    left = by_id[once]["remaining"]
    assert (by_id[once]["kind"], left["uses_left"], left["usable"], left["max_amount_now"]) == \
        ("payment", 1, True, {"USD": 1000})
    assert by_id[budget]["remaining"]["budget"] == {"currency": "USD", "max": 3000, "spent": 0, "left": 3000}
    assert by_id[budget]["constraints"][:3] == BUDGET

    foreign = await bob.call("GET", HELD, agent_id=str(agent.id))  # another org: nothing of A's agent
    assert foreign.status_code == 200 and foreign.json() == {"items": []}, foreign.text
    assert "name the agent" in assert_problem(await alice.call("GET", HELD), 422, "invalid")["detail"]
    assert_problem(await alice.call("GET", HELD, agent_id="not-a-uuid"), 422)


async def test_the_merchant_signs_an_ap2_checkout_for_its_acp_session(
    gateway: str, merchant: Merchant, bob: Caller  # noqa: F811
) -> None:
    shop = merchant.caller
    ebook = await merchant.product("E-book", 1000, tax_category="digital")
    session = await merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
    assert session["status"] == "ready_for_payment"

    signed = await shop.call("POST", sign(session["id"]), {"merchant_name": "Books", "ttl_seconds": 600})
    assert signed.status_code == 201, signed.text
    checkout = signed.json()
    async with httpx.AsyncClient(base_url=gateway) as public:
        keys = (await public.get(f"/v1/ap2/{shop.account.org_id}/jwks.json")).json()
    claims = verify_receipt(checkout["checkout_jwt"], keys)  # the merchant key's ES256 signature
    assert claims["acp_checkout_session_id"] == checkout["acp_session_id"] == session["id"]
    assert claims["total"] == {"amount": total(session), "currency": "USD"} == \
        {"amount": checkout["amount"], "currency": checkout["currency"]}
    assert [(line["item"]["id"], line["quantity"]) for line in claims["line_items"]] == [(ebook, 1)]
    again = await shop.call("POST", sign(session["id"]))  # no body: the defaults; a new nonce
    assert again.status_code == 201 and again.json()["nonce"] != checkout["nonce"], again.text

    assert_problem(await bob.call("POST", sign(session["id"])), 404, "checkout_session_not_found")  # not B's
    assert_problem(await shop.call("POST", sign("cs_no_such_session")), 404, "checkout_session_not_found")
    unready = await merchant.create(create_body(ebook))  # no buyer yet
    assert_problem(await shop.call("POST", sign(unready["id"])), 409, "checkout_not_allowed")
    assert_problem(await shop.call("POST", sign(session["id"]), {"ttl_seconds": 0}), 422)
    assert_problem(await shop.call("POST", sign(session["id"]), {"org_id": str(bob.account.org_id)}), 422)
