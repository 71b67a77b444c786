"""Webhook sources: an admin's, their secret shown once and sealed at rest, rotated with a grace period."""

import json

import asyncpg
import httpx
import pytest

from shared.contracts.keys import keys_rotate_spec
from shared.contracts.tenancy.webhooks import WEBHOOK_SOURCE_LIST
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, assert_problem, caller_for
from tests.tenancy.conftest import Account, add_member
from tests.webhooks.conftest import body_of, deliver, new_source, standard_headers


async def test_the_secret_is_in_the_create_s_reply_only_never_in_events_or_at_rest(
        alice: Caller, http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    created = await new_source(alice)
    secret, source_id = created["secret"], created["source"]["id"]
    assert secret.startswith("whsec_") and created["source"]["secret_hint"] == secret[-4:]
    body = body_of("payment.succeeded", amount=1)
    assert (await deliver(http, created, body, standard_headers(secret, body))).status_code == 200

    replies = [await alice.call("GET", "/v1/webhook-sources"), await alice.call("GET", f"/v1/webhook-sources/{source_id}")]
    rotated = await alice.call("POST", f"/v1/webhook-sources/{source_id}/rotate", {"grace_seconds": 0})

    assert all(r.status_code == 200 and secret not in r.text and source_id in r.text for r in replies)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (secret, None) and secret not in rotated.text
    outbox = await admin.fetch("SELECT envelope FROM tenancy.outbox")
    texts = [bytes(r["envelope"]).decode() for r in outbox]
    assert any(source_id in t for t in texts)
    assert not [t for t in texts if secret in t or rotated.json()["secret"] in t]
    row = await admin.fetchrow("SELECT * FROM tenancy.webhook_sources WHERE id = $1", created["source"]["id"])
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert secret.encode() not in stored and secret.removeprefix("whsec_").encode() not in stored


async def test_a_rotation_keeps_the_old_secret_for_its_grace_period_only(alice: Caller, http: httpx.AsyncClient) -> None:
    created = await new_source(alice)
    path = f"/v1/webhook-sources/{created['source']['id']}/rotate"
    old = created["secret"]

    graced = (await alice.call("POST", path, {"grace_seconds": 600})).json()
    body = body_of("payment.succeeded", n=1)
    assert (await deliver(http, created, body, standard_headers(old, body))).status_code == 200
    assert (await deliver(http, created, body, standard_headers(graced["secret"], body))).status_code == 200
    assert graced["source"]["previous_secret_valid_until"] is not None

    given = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u"
    ended = (await alice.call("POST", path, {"grace_seconds": 0, "secret": given})).json()
    assert ended["secret"] == given and ended["source"]["previous_secret_valid_until"] is None
    body = body_of("payment.succeeded", n=2)
    assert_problem(await deliver(http, created, body, standard_headers(graced["secret"], body)), 401,
                   "webhook_signature_invalid")
    assert (await deliver(http, created, body, standard_headers(given, body))).status_code == 200


@pytest.mark.parametrize("body", [
    {"name": "bad", "secret": "not-base64-but-long-enough!!"},
    {"name": "bad", "secret": "whsec_c2hvcnQ="},
    {"name": "bad", "scheme": "hmac"},
    {"name": "bad", "mappings": {"x.y": {"event_type": "no_such_event"}}},
    {"name": "bad", "mappings": {"x.y": {"action": "invite", "role": "org_owner"}}},
    {"name": "bad", "mappings": {"x.y": {"action": "event"}}},
    {"name": "bad", "type_path": "data..email"},
    {"name": "bad", "tolerance_seconds": 0},
])
async def test_a_bad_source_is_refused_with_a_problem(alice: Caller, body: dict[str, object]) -> None:
    response = await alice.call("POST", "/v1/webhook-sources", body)
    assert_problem(response, 422)
    assert "not-base64" not in response.text


async def test_a_name_is_unique_in_the_org(alice: Caller) -> None:
    await new_source(alice, name="clerk")
    assert_problem(await alice.call("POST", "/v1/webhook-sources", {"name": "clerk"}), 409, "conflict")


async def test_only_admins_manage_sources(alice: Caller, gateway: str, bus: BusClient) -> None:
    created = await new_source(alice)
    member: Account = await add_member(bus, alice.account)
    user = await caller_for(gateway, member)
    try:
        for method, path in [("GET", "/v1/webhook-sources"), ("POST", "/v1/webhook-sources"),
                             ("GET", f"/v1/webhook-sources/{created['source']['id']}"),
                             ("DELETE", f"/v1/webhook-sources/{created['source']['id']}"),
                             ("POST", f"/v1/webhook-sources/{created['source']['id']}/rotate")]:
            response = await user.call(method, path, {"name": "mine"} if path.endswith("sources") else {})
            assert_problem(response, 403, "forbidden")
    finally:
        await user.http.aclose()
    listed = await bus.request(WEBHOOK_SOURCE_LIST, {}, alice.account.ctx)
    assert [s.name for s in listed.sources] == [created["source"]["name"]]
    assert json.loads(listed.model_dump_json())["sources"][0]["secret_hint"] == created["secret"][-4:]


async def test_a_source_still_verifies_after_its_keys_are_rotated(
        alice: Caller, http: httpx.AsyncClient, bus: BusClient, platform: Account) -> None:
    created = await new_source(alice)
    rotated = await bus.request(keys_rotate_spec("tenancy"), {"kek": True, "data_keys": True,
                                                              "orgs": [str(alice.account.org_id)]}, platform.ctx)
    assert rotated is not None
    body = body_of("payment.succeeded", n=3)
    response = await deliver(http, created, body, standard_headers(created["secret"], body))
    assert response.status_code == 200 and response.json()["duplicate"] is False, response.text
