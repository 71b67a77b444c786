"""Rate limits at the edge with tenancy's rules: `RateLimit-*` headers, 429 `rate_limited` with `Retry-After`.

The rules are set through tenancy as an owner would (`PUT /v1/orgs/{id}/rate-limits`); the
verified key carries them to the gateway, so they apply once the key cache turns over.
"""

import asyncio
from uuid import uuid4

import httpx
import pytest

from services.gateway.limits import RateLimiter, Refused
from shared.contracts.tenancy import KEY_CREATE, RATE_SET, RateLimitRule
from shared.runtime.client import BusClient
from tests.gateway.conftest import KEY_CACHE_TTL, Caller, assert_problem, caller_for
from tests.tenancy.conftest import account


async def set_rule(bus: BusClient, owner: Caller, **rule: object) -> None:
    await bus.request(RATE_SET, rule, owner.account.ctx)
    await asyncio.sleep(KEY_CACHE_TTL + 0.2)  # the gateway's cached answer for the key turns over


def assert_rate_limited(response: httpx.Response) -> None:
    problem = assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-remaining"] == "0"
    assert problem["details"]["limit"] == int(response.headers["ratelimit-limit"])


async def test_every_answer_says_what_is_left_of_the_plan_s_window(alice: Caller) -> None:
    first, second = [await alice.call("GET", "/v1/things") for _ in range(2)]
    assert first.headers["ratelimit-limit"] == "600"  # the starter plan: 600 calls a minute
    assert int(second.headers["ratelimit-remaining"]) < int(first.headers["ratelimit-remaining"])
    assert 1 <= int(first.headers["ratelimit-reset"]) <= 60
    assert first.headers["ratelimit-policy"] == "600;w=60"


async def test_the_org_window_refuses_with_retry_after(bus: BusClient, alice: Caller) -> None:
    await set_rule(bus, alice, scope="org", max_calls=3, window_seconds=60)
    answers = [await alice.call("GET", "/v1/things") for _ in range(4)]
    if [a.status_code for a in answers] != [200, 200, 200, 429]:  # the window ended between two calls: once more
        await asyncio.sleep(int(answers[-1].headers["ratelimit-reset"]))
        answers = [await alice.call("GET", "/v1/things") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429], [a.status_code for a in answers]
    assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert_rate_limited(answers[3])
    assert (await alice.call("GET", "/v1/me")).status_code == 429  # every route of the org, not only that one


async def test_a_key_window_counts_each_key_apart(gateway: str, bus: BusClient, alice: Caller) -> None:
    await set_rule(bus, alice, scope="key", max_calls=2, window_seconds=60)
    issued = await bus.request(KEY_CREATE, {"name": "second"}, alice.account.ctx)
    other = await caller_for(gateway, await account(bus, issued.key))
    async with other.http:
        assert [(await alice.call("GET", "/v1/things")).status_code for _ in range(2)] == [200, 200]
        assert_rate_limited(await alice.call("GET", "/v1/things"))
        assert (await other.call("GET", "/v1/things")).status_code == 200  # another key of the same org


async def test_an_operation_window_counts_only_its_bus_verb(bus: BusClient, alice: Caller) -> None:
    await set_rule(bus, alice, scope="operation", operation="things.create", max_calls=1, window_seconds=60)
    assert (await alice.call("POST", "/v1/things", {"type": "blog_post", "name": "one"})).status_code == 201
    refused = await alice.call("POST", "/v1/things", {"type": "blog_post", "name": "two"})
    assert_rate_limited(refused)
    assert refused.json()["details"]["scope"] == "operation"
    assert (await alice.call("GET", "/v1/things")).status_code == 200
    assert len((await alice.call("GET", "/v1/things")).json()["things"]) == 1  # the refused create wrote nothing


def rule(scope: str, max_calls: int, window: int = 60, operation: str = "*") -> RateLimitRule:
    return RateLimitRule(scope=scope, operation=operation, max_calls=max_calls, window_seconds=window)  # type: ignore[arg-type]


def test_each_replica_allows_its_share_of_a_rule() -> None:
    limiter = RateLimiter(replicas=3)
    org = uuid4()
    allowances = [limiter.take_request(org, "k" * 12, [rule("org", 10)]) for _ in range(4)]  # ceil(10 / 3) = 4
    assert [a.remaining for a in allowances if a] == [3, 2, 1, 0] and allowances[0].limit == 4  # type: ignore[union-attr]
    with pytest.raises(Refused):
        limiter.take_request(org, "k" * 12, [rule("org", 10)])


def test_a_refused_call_costs_no_window_anything() -> None:
    limiter = RateLimiter()
    org, rules = uuid4(), [rule("org", 5), rule("key", 1)]
    limiter.take_request(org, "a" * 12, rules)
    with pytest.raises(Refused) as refused:
        limiter.take_request(org, "a" * 12, rules)  # the key's window is full: the org's is not charged
    assert refused.value.allowance.scope == "key" and refused.value.details["retry_after"] > 0
    org_only = limiter.take_request(org, "b" * 12, [rule("org", 5)])
    assert org_only is not None and org_only.remaining == 3  # two calls counted in the org's window, not three


async def test_a_window_reopens_when_it_ends() -> None:
    limiter, org = RateLimiter(), uuid4()
    limiter.take_request(org, "k" * 12, [rule("org", 1, window=1)])
    with pytest.raises(Refused) as refused:
        limiter.take_request(org, "k" * 12, [rule("org", 1, window=1)])
    await asyncio.sleep(refused.value.allowance.reset + 0.01)
    assert limiter.take_request(org, "k" * 12, [rule("org", 1, window=1)]) is not None
