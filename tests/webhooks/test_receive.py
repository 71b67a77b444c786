"""Receiving signed webhooks over real HTTP: verified, deduplicated by webhook id, mapped once, refused otherwise."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from standardwebhooks.webhooks import Webhook

from shared.contracts.eventlog import QUERY
from shared.contracts.tenancy import MEMBER_ACCEPT, MEMBER_LIST
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, assert_problem
from tests.polling import until_async
from tests.tenancy.conftest import Mailbox, events_of
from tests.webhooks.conftest import body_of, deliver, hmac_signature, new_source, standard_headers


async def _webhook_events(admin: asyncpg.Connection, caller: Caller, event_type: str) -> list[dict[str, Any]]:
    return [e for e in await events_of(admin, caller.account.org_id, event_type)
            if e["payload"]["metadata"].get("protocol") == "webhook"]


async def test_a_webhook_signed_by_the_official_class_becomes_its_event_once(
        alice: Caller, http: httpx.AsyncClient, admin: asyncpg.Connection, bus: BusClient) -> None:
    source = await new_source(alice)
    body = body_of("payment.succeeded", amount=1500, currency="usd")
    headers = standard_headers(source["secret"], body)
    Webhook(source["secret"]).verify(body, headers)  # what we send is what the official verifier accepts

    first, again = await deliver(http, source, body, headers), await deliver(http, source, body, headers)

    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert first.json()["event_type"] == "payment_event" and again.json()["event_id"] == first.json()["event_id"]
    [event] = await _webhook_events(admin, alice, "payment_event")
    metadata = event["payload"]["metadata"]
    assert event["id"] == first.json()["event_id"] and event["actor_id"] == source["source"]["id"]
    assert metadata["status"] == "processed" and metadata["webhookId"] == headers["webhook-id"]
    assert metadata["source"] == {"id": source["source"]["id"], "name": source["source"]["name"]}
    assert metadata["data"] == {"amount": 1500, "currency": "usd"}

    async def logged() -> list[str]:  # the event log ingests them (no dead letter): the source's life and the payment
        page = await bus.request(QUERY, {"target_id": source["source"]["id"]}, alice.account.ctx)
        return sorted(e.type for e in page.events) if len(page.events) >= 2 else []

    assert await until_async(logged, timeout=30) == ["entity_created", "payment_event"]


async def test_concurrent_deliveries_of_one_webhook_act_once(
        alice: Caller, http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    source = await new_source(alice)
    body = body_of("payment.succeeded", amount=700)
    headers = standard_headers(source["secret"], body)

    replies = await asyncio.gather(*(deliver(http, source, body, headers) for _ in range(6)))

    assert [r.status_code for r in replies] == [200] * 6, [r.text for r in replies]
    assert sorted(r.json()["duplicate"] for r in replies) == [False] + [True] * 5
    assert len({r.json()["event_id"] for r in replies}) == 1
    assert len(await _webhook_events(admin, alice, "payment_event")) == 1


async def test_unsigned_missigned_and_stale_webhooks_are_refused_and_change_nothing(
        alice: Caller, http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    source = await new_source(alice)
    body = body_of("payment.succeeded", amount=1)
    good = standard_headers(source["secret"], body)
    foreign = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    stale_at = datetime.now(UTC) - timedelta(minutes=6)

    cases = {
        "webhook_signature_missing": (body, {"content-type": "application/json"}),
        "webhook_signature_missing ": (body, {k: v for k, v in good.items() if k != "webhook-signature"}),
        "webhook_signature_invalid": (body, standard_headers(foreign, body)),
        "webhook_signature_invalid ": (body.replace(b'"amount": 1', b'"amount": 9'), good),
        "webhook_signature_invalid  ": (body, {**good, "webhook-timestamp": "soon"}),
        "webhook_timestamp_out_of_tolerance": (body, standard_headers(source["secret"], body, at=stale_at)),
        "webhook_timestamp_out_of_tolerance ": (
            body, standard_headers(source["secret"], body, at=datetime.now(UTC) + timedelta(minutes=6))),
    }
    for code, (sent, headers) in cases.items():
        response = await deliver(http, source, sent, headers)
        assert_problem(response, 401, code.strip())
        assert source["secret"] not in response.text

    assert await _webhook_events(admin, alice, "payment_event") == []
    assert (await deliver(http, source, body, good)).json()["duplicate"] is False  # the refusals claimed nothing


async def test_a_replay_outside_the_tolerance_is_refused_even_though_it_was_received(
        alice: Caller, http: httpx.AsyncClient) -> None:
    source = await new_source(alice, tolerance_seconds=60)
    body = body_of("payment.succeeded", amount=3)
    at = datetime.now(UTC) - timedelta(seconds=30)
    headers = standard_headers(source["secret"], body, at=at)
    assert (await deliver(http, source, body, headers)).status_code == 200
    late = standard_headers(source["secret"], body, msg_id=headers["webhook-id"], at=at - timedelta(seconds=60))
    assert_problem(await deliver(http, source, body, late), 401, "webhook_timestamp_out_of_tolerance")


async def test_an_idp_user_created_invites_the_person(
        alice: Caller, http: httpx.AsyncClient, bus: BusClient, admin: asyncpg.Connection, mailbox: Mailbox) -> None:
    source = await new_source(alice)
    email = f"new-{source['source']['id'][-8:]}@idp.test"
    body = body_of("user.created", id="user_29w83sxmDNGwOuEthce5gg56FcC",
                   email_addresses=[{"email_address": email.upper(), "id": "idn_1"}], first_name="Ada")

    response = await deliver(http, source, body, standard_headers(source["secret"], body))

    assert response.status_code == 200, response.text
    assert response.json()["event_type"] == "user_invited_to_org" and response.json()["outcome"] == "mapped"
    members = await bus.request(MEMBER_LIST, {}, alice.account.ctx)
    [invite] = [i for i in members.pending_invites if i.email == email]
    assert invite.role == "org_user" and invite.invited_by == alice.account.person_id
    [event] = await _webhook_events(admin, alice, "user_invited_to_org")
    assert event["payload"]["metadata"]["email"] == email and event["id"] == response.json()["event_id"]
    mailed = await mailbox.next_for(email)  # no one to hand the token to: it goes to the person's mailbox
    assert mailed["token"] not in response.text and mailed["token"] not in json.dumps(event)
    joined = await bus.request(MEMBER_ACCEPT, {"token": mailed["token"], "display_name": "Ada"})
    assert joined.person.email == email and joined.membership.role == "org_user"


async def test_an_invite_mapping_without_an_email_is_refused_and_not_recorded(
        alice: Caller, http: httpx.AsyncClient) -> None:
    source = await new_source(alice)
    body = body_of("user.created", id="user_1", email_addresses=[])
    headers = standard_headers(source["secret"], body)
    assert_problem(await deliver(http, source, body, headers), 422, "webhook_mapping_failed")
    assert_problem(await deliver(http, source, body, headers), 422, "webhook_mapping_failed")  # not a duplicate


async def test_an_unmapped_type_is_stored_and_acknowledged_with_an_event_saying_so(
        alice: Caller, http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    source = await new_source(alice)
    body = body_of("session.ended", session_id="sess_1")
    response = await deliver(http, source, body, standard_headers(source["secret"], body))
    assert response.status_code == 200 and response.json()["outcome"] == "unmapped", response.text
    [event] = await _webhook_events(admin, alice, "communication_event")
    assert event["payload"]["metadata"]["mapped"] is False
    assert event["payload"]["metadata"]["providerType"] == "session.ended"


async def test_a_body_that_is_not_storable_json_is_acknowledged_as_unmapped(alice: Caller, http: httpx.AsyncClient) -> None:
    source = await new_source(alice)
    for body in (b"plain text, not json", b'{"type": "payment.succeeded", "data": "\\u0000"}',
                 b'{"type": "payment.succeeded", "data": NaN}'):
        response = await deliver(http, source, body, standard_headers(source["secret"], body))
        assert response.status_code == 200 and response.json()["outcome"] == "unmapped", (body, response.text)


async def test_the_hmac_scheme_with_an_id_and_a_type_header(
        alice: Caller, http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    source = await new_source(alice, scheme="hmac", signature_header="X-Hub-Signature-256", signature_prefix="sha256=",
                              id_header="X-GitHub-Delivery", type_header="X-GitHub-Event",
                              mappings={"push": {"event_type": "content_changed"}})
    body = json.dumps({"ref": "refs/heads/main", "commits": [{"id": "abc"}]}).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + hmac_signature(source["secret"], body),
               "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Event": "push",
               "content-type": "application/json"}

    first, again = await deliver(http, source, body, headers), await deliver(http, source, body, headers)

    assert first.status_code == 200 and first.json() | {"event_id": None} == {
        "webhook_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "duplicate": False, "outcome": "mapped",
        "event_type": "content_event", "event_id": None}, first.text
    assert again.json()["duplicate"] is True
    assert len(await _webhook_events(admin, alice, "content_event")) == 1
    wrong = {**headers, "X-Hub-Signature-256": "sha256=" + hmac_signature("not-the-secret-at-all", body)}
    assert_problem(await deliver(http, source, body, wrong), 401, "webhook_signature_invalid")
    assert_problem(await deliver(http, source, body, {"X-GitHub-Event": "push"}), 401, "webhook_signature_missing")


async def test_the_hmac_scheme_with_a_signed_timestamp(alice: Caller, http: httpx.AsyncClient) -> None:
    source = await new_source(alice, scheme="hmac", signature_header="X-Signature", signature_encoding="base64",
                              timestamp_header="X-Timestamp", tolerance_seconds=120)
    body = body_of("payment.succeeded", amount=5)

    def signed(at: int) -> dict[str, str]:
        return {"X-Timestamp": str(at), "X-Signature": hmac_signature(source["secret"], f"{at}.".encode() + body, "base64")}

    now = int(datetime.now(UTC).timestamp())
    first = await deliver(http, source, body, signed(now))
    assert first.status_code == 200 and first.json()["event_type"] == "payment_event", first.text
    assert (await deliver(http, source, body, signed(now))).json()["duplicate"] is True  # same signed bytes: same id
    assert_problem(await deliver(http, source, body, signed(now - 600)), 401, "webhook_timestamp_out_of_tolerance")
    assert_problem(await deliver(http, source, body, {"X-Signature": signed(now)["X-Signature"]}), 401,
                   "webhook_signature_missing")


async def test_an_unknown_or_deleted_source_is_not_found(alice: Caller, http: httpx.AsyncClient) -> None:
    source = await new_source(alice)
    body = body_of("payment.succeeded")
    headers = standard_headers(source["secret"], body)
    assert (await alice.call("DELETE", f"/v1/webhook-sources/{source['source']['id']}")).status_code == 200
    assert_problem(await deliver(http, source, body, headers), 404, "not_found")
    unknown = {"source": {"id": "0190f000-0000-7000-8000-000000000000"}}
    assert_problem(await deliver(http, unknown, body, headers), 404, "not_found")


async def test_each_source_is_rate_limited(alice: Caller, http: httpx.AsyncClient) -> None:
    source = await new_source(alice, max_per_minute=2)
    statuses = []
    for n in range(3):
        body = body_of("payment.succeeded", n=n)
        statuses.append((await deliver(http, source, body, standard_headers(source["secret"], body))).status_code)
    body = body_of("payment.succeeded", n=9)
    refused = await deliver(http, source, body, {"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,x"})
    assert statuses[:2] == [200, 200] and statuses[2] == 429
    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) <= 60


async def test_a_webhook_signed_with_one_org_s_secret_is_refused_by_another_org_s_source(
        alice: Caller, bob: Caller, http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    mine, theirs = await new_source(alice), await new_source(bob)
    body = body_of("payment.succeeded", amount=99)
    response = await deliver(http, theirs, body, standard_headers(mine["secret"], body))
    assert_problem(response, 401, "webhook_signature_invalid")
    assert await _webhook_events(admin, bob, "payment_event") == []
