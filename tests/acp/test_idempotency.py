"""ACP idempotency over real HTTP: required keys, replays, conflicts, in-flight collisions, scope, expiry.

Exercised on ACP POST routes through the gateway (the Delegate Payment route here; checkout's in the
checkout tests), with the records in commerce's Postgres: a second gateway replica replays what the
first answered. Every error body is checked against the official `Error` schema.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa

from services.commerce import service_idempotency
from services.gateway.acp.idempotency import request_hash
from services.gateway.api import create_app
from services.gateway.server import GatewayState, serve
from services.gateway.settings import GatewaySettings
from shared.contracts.commerce.idempotency import (
    IDEMPOTENCY_BEGIN,
    IDEMPOTENCY_FINISH,
    IdempotencyConflict,
    IdempotencyInFlight,
)
from shared.kernel.envelope import Protocol
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.acp.test_delegate_payment import PATH, check, delegation
from tests.gateway.conftest import Caller, alice, bob, http  # noqa: F401 (fixtures)

ENDPOINT = f"POST {PATH}"


def acp(key: str | None) -> dict[str, str]:
    return {"API-Version": "2026-04-17", **({"Idempotency-Key": key} if key is not None else {})}


async def post(caller: Caller, body: Any, key: str | None) -> httpx.Response:
    return await caller.http.post(PATH, json=body, headers=acp(key))


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    check("Error", response.json())
    assert (response.json()["type"], response.json()["code"]) == ("invalid_request", code)


async def tokens_of(commerce: ServiceRuntime, caller: Caller, session: str) -> int:
    async with commerce.db.transaction(caller.account.org_id) as db:
        statement = sa.text("SELECT count(*) FROM commerce.vault_tokens WHERE checkout_session_id = :s")
        return (await db.execute(statement, {"s": session})).scalar_one()


@pytest.fixture
def commerce(services: dict[str, ServiceRuntime]) -> ServiceRuntime:
    return services["commerce"]


@pytest.fixture(scope="module")
async def second_gateway(services: dict[str, ServiceRuntime], bus: BusClient, settings: Settings) -> AsyncIterator[str]:
    """Another gateway replica on the same stack: it shares nothing with the first but commerce."""
    state: GatewayState = await serve(create_app(bus, GatewaySettings(**settings.model_dump())), "127.0.0.1", 0)
    yield state.url
    state.server.should_exit = True
    await state.task


async def test_a_post_without_an_idempotency_key_is_400(alice: Caller, commerce: ServiceRuntime) -> None:  # noqa: F811
    assert_error(await post(alice, delegation("cs_nokey"), None), 400, "idempotency_key_required")
    assert await tokens_of(commerce, alice, "cs_nokey") == 0


async def test_a_retry_replays_the_first_answer_on_any_replica(alice: Caller, commerce: ServiceRuntime,  # noqa: F811
                                                               second_gateway: str) -> None:
    key, body = str(uuid4()), delegation("cs_replay")
    first = await post(alice, body, key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert first.headers["Idempotency-Key"] == key
    again = await alice.http.post(PATH, json=body, headers={**acp(key), "Request-Id": "req_retry"})
    assert again.headers["Request-Id"] == "req_retry"  # a replay echoes its own request id
    async with httpx.AsyncClient(base_url=second_gateway, headers=alice.http.headers) as elsewhere:
        there = await elsewhere.post(PATH, json=body, headers=acp(key))
    for replay in (again, there):
        assert replay.status_code == 201 and replay.content == first.content
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.headers["Idempotency-Key"] == key
        assert replay.headers["content-type"] == first.headers["content-type"]
    assert await tokens_of(commerce, alice, "cs_replay") == 1


async def test_key_order_and_whitespace_do_not_make_another_body(alice: Caller) -> None:  # noqa: F811
    key, body = str(uuid4()), delegation("cs_canon")
    first = await post(alice, body, key)
    reordered = httpx.Request("POST", "/", json=dict(reversed(list(body.items())))).content.replace(b",", b", ")
    again = await alice.http.post(PATH, content=reordered, headers={**acp(key), "Content-Type": "application/json"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.content == first.content


async def test_an_error_answer_is_replayed_too(alice: Caller) -> None:  # noqa: F811
    key, body = str(uuid4()), delegation("cs_err", number="4242424242424241")
    first = await post(alice, body, key)
    again = await post(alice, body, key)
    assert first.status_code == again.status_code == 422 and again.content == first.content, (first.text, again.text)
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_the_same_key_with_another_body_is_422(alice: Caller, commerce: ServiceRuntime) -> None:  # noqa: F811
    key = str(uuid4())
    assert (await post(alice, delegation("cs_a"), key)).status_code == 201
    assert_error(await post(alice, delegation("cs_b"), key), 422, "idempotency_conflict")
    assert await tokens_of(commerce, alice, "cs_b") == 0


async def test_the_same_key_while_the_first_runs_is_409_with_retry_after(alice: Caller, bus: BusClient,  # noqa: F811
                                                                          commerce: ServiceRuntime) -> None:
    key, body = str(uuid4()), delegation("cs_busy")
    content = httpx.Request("POST", "/", json=body).content
    started = await bus.request(IDEMPOTENCY_BEGIN, {"endpoint": ENDPOINT, "key": key,
                                                    "request_hash": request_hash(content)},
                                alice.account.ctx, protocol=Protocol.ACP)
    assert started.outcome == "proceed"
    busy = await post(alice, body, key)
    assert_error(busy, 409, "idempotency_in_flight")
    assert 1 <= int(busy.headers["Retry-After"]) <= commerce.settings.commerce_idempotency_lease
    assert await tokens_of(commerce, alice, "cs_busy") == 0


async def test_two_concurrent_requests_with_one_key_run_once(alice: Caller, commerce: ServiceRuntime) -> None:  # noqa: F811
    key, body = str(uuid4()), delegation("cs_twins")
    answers = await asyncio.gather(*(post(alice, body, key) for _ in range(6)))
    fresh = [a for a in answers if a.status_code == 201 and "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1, [(a.status_code, a.text) for a in answers]
    for other in answers:
        if other is fresh[0]:
            continue
        if other.status_code == 409:
            assert_error(other, 409, "idempotency_in_flight")
            assert int(other.headers["Retry-After"]) >= 1
        else:
            assert other.headers["Idempotent-Replayed"] == "true" and other.content == fresh[0].content
    assert await tokens_of(commerce, alice, "cs_twins") == 1


async def test_keys_are_scoped_to_the_caller(alice: Caller, bob: Caller) -> None:  # noqa: F811
    key = str(uuid4())
    mine, theirs = await post(alice, delegation("cs_scope"), key), await post(bob, delegation("cs_scope"), key)
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers and theirs.json()["id"] != mine.json()["id"]


async def test_keys_are_scoped_to_the_endpoint(alice: Caller, bus: BusClient) -> None:  # noqa: F811
    key, digest = str(uuid4()), "ab" * 32
    for endpoint in ("POST /acp/checkout_sessions", "POST /acp/checkout_sessions/cs_1/complete"):
        started = await bus.request(IDEMPOTENCY_BEGIN, {"endpoint": endpoint, "key": key, "request_hash": digest},
                                    alice.account.ctx, protocol=Protocol.ACP)
        assert started.outcome == "proceed"


async def test_a_5xx_answer_is_never_stored(alice: Caller, bus: BusClient) -> None:  # noqa: F811
    key, digest = str(uuid4()), "cd" * 32
    begin = {"endpoint": ENDPOINT, "key": key, "request_hash": digest}
    started = await bus.request(IDEMPOTENCY_BEGIN, begin, alice.account.ctx, protocol=Protocol.ACP)
    finished = await bus.request(IDEMPOTENCY_FINISH, {"endpoint": ENDPOINT, "key": key, "lock_id": started.lock_id,
                                                      "status": 503, "body": "{}"},
                                 alice.account.ctx, protocol=Protocol.ACP)
    assert finished.stored is False
    again = await bus.request(IDEMPOTENCY_BEGIN, begin, alice.account.ctx, protocol=Protocol.ACP)
    assert again.outcome == "proceed" and again.lock_id != started.lock_id


async def test_a_request_whose_gateway_died_is_taken_over_after_its_lease(alice: Caller, bus: BusClient,  # noqa: F811
                                                                          commerce: ServiceRuntime) -> None:
    key, digest = str(uuid4()), "ef" * 32
    begin = {"endpoint": ENDPOINT, "key": key, "request_hash": digest}
    lost = await bus.request(IDEMPOTENCY_BEGIN, begin, alice.account.ctx, protocol=Protocol.ACP)
    with pytest.raises(IdempotencyInFlight):
        await bus.request(IDEMPOTENCY_BEGIN, begin, alice.account.ctx, protocol=Protocol.ACP)
    async with commerce.db.transaction(alice.account.org_id) as db:
        await db.execute(sa.text("UPDATE commerce.idempotency_keys SET locked_until = now() - interval '1 s'"
                                 " WHERE key = :key"), {"key": key})
    with pytest.raises(IdempotencyConflict):
        await bus.request(IDEMPOTENCY_BEGIN, {**begin, "request_hash": "00" * 32}, alice.account.ctx,
                          protocol=Protocol.ACP)
    taken = await bus.request(IDEMPOTENCY_BEGIN, begin, alice.account.ctx, protocol=Protocol.ACP)
    assert taken.outcome == "proceed" and taken.lock_id != lost.lock_id
    finish = {"endpoint": ENDPOINT, "key": key, "lock_id": lost.lock_id, "status": 201, "body": "{}"}
    late = await bus.request(IDEMPOTENCY_FINISH, finish, alice.account.ctx, protocol=Protocol.ACP)
    assert late.stored is False


async def test_records_are_kept_a_day_then_expire_and_are_swept(alice: Caller, commerce: ServiceRuntime) -> None:  # noqa: F811
    key, body = str(uuid4()), delegation("cs_ttl")
    assert (await post(alice, body, key)).status_code == 201
    async with commerce.db.transaction(alice.account.org_id) as db:
        kept = (await db.execute(sa.text("SELECT expires_at - created_at FROM commerce.idempotency_keys"
                                         " WHERE key = :key"), {"key": key})).scalar_one()
        assert kept >= timedelta(hours=24)
        await db.execute(sa.text("UPDATE commerce.idempotency_keys SET expires_at = now() - interval '1 s'"
                                 " WHERE key = :key"), {"key": key})
    async with commerce.db.transaction() as db:
        assert await service_idempotency.sweep(db) >= 1
    async with commerce.db.transaction(alice.account.org_id) as db:
        count = sa.text("SELECT count(*) FROM commerce.idempotency_keys WHERE key = :key")
        assert (await db.execute(count, {"key": key})).scalar_one() == 0
    fresh = await post(alice, body, key)
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers


async def test_without_a_valid_key_the_route_answers_401(http: httpx.AsyncClient) -> None:  # noqa: F811
    for headers in ({}, {"Authorization": "Bearer one_live_nope"}):
        response = await http.post(PATH, json=delegation("cs_anon"), headers={**acp(str(uuid4())), **headers})
        assert response.status_code == 401


async def test_a_body_over_the_limit_is_413_and_keeps_no_key(alice: Caller, gateway: str) -> None:  # noqa: F811
    key, limit = str(uuid4()), GatewaySettings().gateway_max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length, cut off by the edge as it streams
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    huge = await alice.http.post(PATH, content=chunks(), headers={**acp(key), "Content-Type": "application/json"})
    assert huge.status_code == 413
    fresh = await post(alice, delegation("cs_after_413"), key)
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
