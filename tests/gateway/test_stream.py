"""The event stream (SSE) over real HTTP: it follows, resumes after a disconnect with nothing missed or
repeated, beats while idle, filters like the tail, stays in the key's org, and leaves nothing behind."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.gateway import routes_stream
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, assert_problem
from tests.gateway.test_events_routes import append, stored
from tests.gateway.test_things import create

PATH = "/v1/events/stream"
READ_TIMEOUT = 30.0
QUIET = "payment_event"  # a type nothing in these tests' fresh orgs does


@dataclass
class Message:
    """One SSE message as a client parses it (a comment-only block is a heartbeat)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comment: str | None = None

    def json(self) -> Any:
        assert self.data is not None, self
        return json.loads(self.data)


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """The stream's messages per the SSE format: `field: value` lines, a blank line ends one."""
    assert response.status_code == 200, (await response.aread()).decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                yield Message(**fields)
            fields = {}
        elif line.startswith(":"):
            fields["comment"] = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields[name]}\n{value}" if name == "data" and name in fields else value
    if fields:
        yield Message(**fields)


async def read_events(caller: Caller, n: int, *, headers: dict[str, str] | None = None,
                      **params: Any) -> list[Message]:
    """Open the stream, take its first `n` events, and hang up (the connection closes)."""
    got: list[Message] = []
    async with asyncio.timeout(READ_TIMEOUT):
        async with caller.http.stream("GET", PATH, params=params, headers=headers, timeout=READ_TIMEOUT) as response:
            async for message in messages(response):
                if message.data is not None:
                    got.append(message)
                    if len(got) == n:
                        break
    return got


async def finite(caller: Caller, **params: Any) -> list[Message]:
    """Everything a `follow=false` stream sends before it ends by itself."""
    async with asyncio.timeout(READ_TIMEOUT):
        async with caller.http.stream("GET", PATH, params={**params, "follow": "false"}) as response:
            return [message async for message in messages(response)]


def n_of(message: Message) -> int:
    return message.json()["metadata"]["n"]


async def publish(caller: Caller, numbers: range, **event: Any) -> None:
    for n in numbers:
        await append(caller, type="content_viewed", metadata={"n": n}, **event)


async def test_resume_after_a_disconnect_misses_and_repeats_nothing(alice: Caller) -> None:
    await publish(alice, range(3))
    first = await read_events(alice, 2, types="content_viewed")  # hangs up with n=2 not yet read
    assert [n_of(m) for m in first] == [0, 1]
    assert all(m.id == str(m.json()["position"]) for m in first)

    await publish(alice, range(3, 6))  # published while nobody listens
    await stored(alice, 6, types="content_viewed")
    resumed: list[Message] = []
    async with asyncio.timeout(READ_TIMEOUT):
        # the browser's way: the same URL (`after=0`) and the last id seen, which wins
        headers = {"Last-Event-ID": first[-1].id or ""}
        async with alice.http.stream("GET", PATH, params={"types": "content_viewed", "after": 0}, headers=headers,
                                     timeout=READ_TIMEOUT) as response:
            async for message in messages(response):
                if message.data is None:
                    continue
                resumed.append(message)
                if len(resumed) == 4:
                    await publish(alice, range(6, 7))  # and live, while connected
                if len(resumed) == 5:
                    break
    assert [n_of(m) for m in resumed] == [2, 3, 4, 5, 6]
    positions = [int(m.id or 0) for m in first + resumed]
    assert positions == sorted(set(positions)), "an event came twice or out of order"

    by_after = await read_events(alice, 1, types="content_viewed", after=positions[4])  # `after` resumes the same
    assert [n_of(m) for m in by_after] == [5]


async def test_an_idle_stream_beats(alice: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_stream, "HEARTBEAT_SECONDS", 0.2)
    beats = 0
    async with asyncio.timeout(READ_TIMEOUT):
        async with alice.http.stream("GET", PATH, params={"types": QUIET}) as response:
            async for message in messages(response):
                assert response.headers["cache-control"] == "no-cache"
                assert message == Message(comment="heartbeat")
                beats += 1
                if beats == 3:
                    break


async def test_a_disconnect_leaves_no_stream_or_poll_behind(alice: Caller, bus: BusClient) -> None:
    def open_streams() -> float:
        return REGISTRY.get_sample_value("one_gateway_event_streams") or 0.0

    before = open_streams()
    async with asyncio.timeout(READ_TIMEOUT):
        async with alice.http.stream("GET", PATH, params={"types": QUIET}) as response:
            stream = messages(response)  # held: a dropped generator is finalized, and that closes the response
            assert await anext(stream) == Message(comment="heartbeat")
            await asyncio.sleep(0.2)  # the next poll is waiting in the event log (HEARTBEAT_SECONDS: 15)
            assert open_streams() == before + 1
            assert len(bus._replies.pending) == 1  # the gateway shares the test's bus: its one tail poll
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0  # well before the poll would have ended by itself
    while open_streams() != before or bus._replies.pending:
        assert loop.time() < deadline, (open_streams(), before, bus._replies.pending)
        await asyncio.sleep(0.05)


async def test_a_revoked_key_ends_its_open_stream(alice: Caller, gateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_stream, "HEARTBEAT_SECONDS", 0.2)
    issued = await alice.call("POST", "/v1/keys", {"name": "streamer"})
    assert issued.status_code == 201, issued.text
    got: list[Message] = []
    async with asyncio.timeout(READ_TIMEOUT), httpx.AsyncClient(base_url=gateway, timeout=READ_TIMEOUT,
                                                                headers={"X-API-Key": issued.json()["key"]}) as http:
        async with http.stream("GET", PATH, params={"types": QUIET}) as response:
            async for message in messages(response):  # ends when the server ends the stream
                got.append(message)
                if len(got) == 1:
                    revoked = await alice.call("DELETE", f"/v1/keys/{issued.json()['info']['key_id']}")
                    assert revoked.status_code == 200, revoked.text
    assert got[0] == Message(comment="heartbeat") and got[-1].event == "problem", got
    problem = got[-1].json()
    assert problem["status"] == 401 and problem["code"] == "unauthenticated" and problem["instance"] == PATH


async def test_the_tail_s_filters(alice: Caller) -> None:
    watched, other = await create(alice, "Watched"), await create(alice, "Other")
    await publish(alice, range(2), target_id=watched["id"], target_type="blog_post")
    await publish(alice, range(2, 3), target_id=other["id"], target_type="blog_post")
    await append(alice, type="payment_processed", metadata={"protocol": "x402", "amount": "1", "currency": "USD"})
    events = await stored(alice, 4, types=["content_viewed", "payment_event"])

    assert [n_of(m) for m in await finite(alice, types="content_viewed", target_id=watched["id"])] == [0, 1]
    assert [n_of(m) for m in await finite(alice, types="content_viewed", thing_id=other["id"])] == [2]
    assert [m.json()["type"] for m in await finite(alice, protocols="x402")] == ["payment_event"]
    by_actor = await finite(alice, types="content_viewed", actor_id=events[0]["actor_id"])
    assert len(by_actor) == 3
    assert [n_of(m) for m in await finite(alice, types="content_viewed", metadata='{"n": 1}')] == [1]
    paged = await finite(alice, types="content_viewed", limit=1)  # caught up over several polls
    assert [n_of(m) for m in paged] == [0, 1, 2]


async def test_only_the_key_s_org(alice: Caller, bob: Caller) -> None:
    theirs = await create(bob, "Theirs")
    await publish(bob, range(2), target_id=theirs["id"], target_type="blog_post")
    await stored(bob, 2, types="content_viewed")
    await publish(alice, range(1))
    await stored(alice, 1, types="content_viewed")

    mine = await finite(alice)
    assert mine and {m.json()["org_id"] for m in mine} == {str(alice.account.org_id)}
    assert await finite(alice, thing_id=theirs["id"]) == []
    assert await finite(alice, target_id=theirs["id"]) == []
    assert_problem(await alice.call("GET", PATH, org_id=str(bob.account.org_id)), 422, "invalid")


async def test_bad_requests_are_problems_before_the_stream_starts(alice: Caller, http: httpx.AsyncClient) -> None:
    assert_problem(await http.get(PATH), 401, "unauthenticated")
    assert_problem(await alice.call("GET", PATH, after=-1), 422, "invalid")
    assert_problem(await alice.call("GET", PATH, limit=0), 422, "invalid")
    assert_problem(await alice.call("GET", PATH, metadata="not json"), 422, "invalid")
    assert_problem(await alice.call("GET", PATH, actor_id="not-a-uuid"), 422, "invalid")
    assert_problem(await alice.http.get(PATH, headers={"Last-Event-ID": "yesterday"}), 422, "invalid")
    assert_problem(await alice.http.get(PATH, headers={"Last-Event-ID": "-5"}), 422, "invalid")
    assert_problem(await alice.call("GET", PATH, after=2**63), 422, "invalid")  # positions are bigints
    assert_problem(await alice.http.get(PATH, headers={"Last-Event-ID": str(2**80)}), 422, "invalid")
