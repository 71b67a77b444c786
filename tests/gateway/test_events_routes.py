"""The event log over real HTTP: append (one, a batch), then query, history and the aggregates find it."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.gateway.conftest import Caller, assert_problem
from tests.gateway.test_things import create

NOW = datetime.now(UTC)
WINDOW = {"since": (NOW - timedelta(days=3)).isoformat(), "until": (NOW + timedelta(days=1)).isoformat()}


async def append(caller: Caller, **event: Any) -> dict[str, Any]:
    response = await caller.call("POST", "/v1/events", event)
    assert response.status_code == 201, response.text
    return response.json()


async def stored(caller: Caller, n: int, timeout: float = 15.0, **query: Any) -> list[dict[str, Any]]:
    """The org's events matching `query` once at least `n` of them are in the log (appends are ingested async)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await caller.call("GET", "/v1/events", **query)
        assert response.status_code == 200, response.text
        events = response.json()["events"]
        if len(events) >= n:
            return events
        assert asyncio.get_running_loop().time() < deadline, f"{len(events)} of {n} events: {response.text}"
        await asyncio.sleep(0.1)


async def test_append_then_query_finds_it(alice: Caller) -> None:
    appended = await append(alice, type="user_login", metadata={"device": "phone"})
    assert appended["duplicate"] is False and appended["type"] == "user_login"
    [event] = await stored(alice, 1, types="user_login")
    assert event["id"] == appended["id"] and event["org_id"] == str(alice.account.org_id)
    assert event["metadata"]["device"] == "phone" and event["actor_id"]

    again = await alice.call("POST", "/v1/events", {"type": "user_login", "id": appended["id"]})
    assert again.status_code == 201 and again.json()["duplicate"] is True


async def test_a_batch_pages_and_filters(alice: Caller) -> None:
    batch = await alice.call("POST", "/v1/events/batch", {"events": [
        {"type": "content_viewed", "metadata": {"n": i, "kind": "odd" if i % 2 else "even"}} for i in range(5)
    ]})
    assert batch.status_code == 201, batch.text
    ids = [e["id"] for e in batch.json()["events"]]
    assert len(set(ids)) == 5
    events = await stored(alice, 5, types="content_viewed")
    assert [e["id"] for e in events] == ids

    first = (await alice.call("GET", "/v1/events", types="content_viewed", limit=2)).json()
    assert [e["id"] for e in first["events"]] == ids[:2] and first["next_cursor"]
    second = (await alice.call("GET", "/v1/events", types="content_viewed", limit=2, after=first["next_cursor"])).json()
    assert [e["id"] for e in second["events"]] == ids[2:4]
    newest = (await alice.call("GET", "/v1/events", types="content_viewed", order="desc", limit=1)).json()
    assert [e["id"] for e in newest["events"]] == ids[-1:]

    odd = (await alice.call("GET", "/v1/events", types="content_viewed", metadata='{"kind": "odd"}')).json()
    assert [e["metadata"]["n"] for e in odd["events"]] == [1, 3]
    assert (await alice.call("GET", "/v1/events", types="content_viewed", since=WINDOW["until"])).json()["events"] == []


async def test_a_thing_s_history(alice: Caller) -> None:
    thing = await create(alice, "Watched")
    for n in range(3):
        await append(alice, type="content_viewed", target_id=thing["id"], target_type="blog_post", metadata={"n": n})
    await stored(alice, 3, types="content_viewed", thing_id=thing["id"])
    history = await alice.call("GET", f"/v1/things/{thing['id']}/history")
    assert history.status_code == 200, history.text
    viewed = [e["metadata"]["n"] for e in history.json()["events"] if "n" in e["metadata"]]
    assert viewed == [2, 1, 0]  # newest first
    page = (await alice.call("GET", f"/v1/things/{thing['id']}/history", limit=1)).json()
    assert len(page["events"]) == 1 and page["next_cursor"]


async def test_aggregates(alice: Caller) -> None:
    await alice.call("POST", "/v1/events/batch", {"events": [
        {"type": "payment_processed", "metadata": {"protocol": "x402", "amount": "1.50", "currency": "USD"}},
        {"type": "payment_processed", "metadata": {"protocol": "acp", "amount": 2, "currency": "USD"}},
        {"type": "payment_requested", "metadata": {"protocol": "acp", "amount": 100, "currency": "USD"}},
        {"type": "user_login"}, {"type": "user_login"},
    ]})
    await stored(alice, 5)

    counts = await alice.call("GET", "/v1/events/daily-counts", **WINDOW)
    assert counts.status_code == 200, counts.text
    by_type = {c["type"]: c["count"] for c in counts.json()["counts"]}
    assert by_type["user_login"] == 2 and by_type["payment_event"] == 3
    logins = (await alice.call("GET", "/v1/events/daily-counts", types="user_login", **WINDOW)).json()["counts"]
    assert {c["type"] for c in logins} == {"user_login"}

    revenue = await alice.call("GET", "/v1/events/revenue", **WINDOW)
    assert revenue.status_code == 200, revenue.text
    assert {k: float(v) for k, v in revenue.json()["by_protocol"].items()} == {"x402": 1.5, "acp": 2.0}
    every = (await alice.call("GET", "/v1/events/revenue", status="", **WINDOW)).json()["by_protocol"]
    assert float(every["acp"]) == 102.0

    stats = await alice.call("GET", "/v1/events/stats")
    assert stats.status_code == 200 and stats.json()["org_events"] >= 5 and stats.json()["org_dead_letters"] == {}
    dead = await alice.call("GET", "/v1/events/dead-letters", limit=10)
    assert dead.status_code == 200 and dead.json() == {"dead_letters": []}


async def test_errors_are_problems(alice: Caller) -> None:
    assert_problem(await alice.call("POST", "/v1/events", {"type": ""}), 422, "invalid")
    assert_problem(await alice.call("POST", "/v1/events", {"type": "user_login", "org_id": str(alice.account.org_id)}), 422)
    assert_problem(await alice.call("POST", "/v1/events/batch", {"events": []}), 422)
    assert_problem(await alice.call("GET", "/v1/events", metadata="not json"), 422, "invalid")
    assert_problem(await alice.call("GET", "/v1/events", limit=0), 422, "invalid")
    assert_problem(await alice.call("GET", "/v1/events/revenue"), 422, "invalid")  # since and until are required
    assert_problem(await alice.call("GET", "/v1/things/not-a-uuid/history"), 422, "invalid")


async def test_a_key_is_required(http: Any) -> None:
    for method, path in (("POST", "/v1/events"), ("GET", "/v1/events"), ("GET", "/v1/events/stats")):
        assert_problem(await http.request(method, path, json={"type": "user_login"} if method == "POST" else None),
                       401, "unauthenticated")
