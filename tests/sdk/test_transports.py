"""The same SDK calls over the bus and over HTTP: the same results, the same typed errors."""

import asyncio

import pytest

from shared.contracts.graph import THING_ARCHIVE, THING_GET, ThingWithRelated
from shared.contracts.knowledge import EMBED, SearchResult
from shared.kernel.errors import InvalidRequest, NotFound, Unauthenticated
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.tools.sdk import NoHttpRoute, One
from tests.polling import until_async
from tests.tenancy.conftest import Account


async def test_whoami_is_the_key_s_owner(one: One, owner: Account) -> None:
    me = await one.whoami()
    assert (me.org_id, me.actor_id, me.role) == (owner.org_id, owner.person_id, "org_owner")


async def test_things_and_connections(one: One) -> None:
    course = await one.things.create("course", "Beekeeping 101", properties={"title": "B", "price": 10, "currency": "USD"})
    post = await one.things.create("blog_post", "Winter hives")
    assert (await one.things.get(course.id)).thing.id == course.id
    updated = await one.things.update(course.id, name="Beekeeping 102")
    assert updated.name == "Beekeeping 102" and updated.properties["price"] == 10
    cheap = await one.things.query(type="course", where=[{"path": "price", "op": "lt", "value": 5}])
    dear = await one.things.query(type="course", where=[{"path": "price", "op": "gt", "value": 5}])
    assert cheap.things == [] and [t.id for t in dear.things] == [course.id]
    link = await one.connections.create(post.id, course.id, "references")
    assert [c.id for c in (await one.connections.query(course.id, direction="in")).connections] == [link.id]
    assert (await one.connections.delete(link.id)).id == link.id
    assert (await one.things.delete(post.id)).id == post.id


async def test_the_generic_request_returns_the_result_model(one: One) -> None:
    thing = await one.things.create("blog_post", "generic")
    got = await one.request(THING_GET, {"id": thing.id})
    assert isinstance(got, ThingWithRelated) and got.thing.id == thing.id


async def test_typed_errors_are_the_same_on_both_transports(one: One) -> None:
    with pytest.raises(NotFound) as missing:
        await one.things.get(uuid7())
    assert missing.value.code == "thing_not_found" or missing.value.code == "not_found"
    with pytest.raises(InvalidRequest):
        await one.things.create("course", "no price")  # a course needs its properties


async def test_a_message_without_a_route_is_a_clear_error_over_http_only(one: One) -> None:
    if one.kind == "http":  # the knowledge service's embedder is the services' own, not the edge's
        with pytest.raises(NoHttpRoute, match="knowledge.embed has no HTTP route"):
            await one.request(EMBED, {"texts": ["bees"]})
    else:
        assert len((await one.request(EMBED, {"texts": ["bees"]})).vectors) == 1


async def test_archive_on_both_transports(one: One) -> None:
    thing = await one.things.create("blog_post", "to archive")
    assert (await one.request(THING_ARCHIVE, {"id": thing.id})).status == "archived"


async def test_tenancy_calls_default_to_the_key_s_org(one: One, owner: Account) -> None:
    members = await one.members.list()
    assert [m.person_id for m in members.members] == [owner.person_id]
    assert {q.metric for q in (await one.quotas.usage()).quotas} >= {"users"}


async def test_events_publish_query_and_tail(one: One) -> None:
    thing = await one.things.create("blog_post", "watched")
    appended = await one.events.publish("content_viewed", target_id=thing.id, metadata={"source": "sdk"})

    async def stored() -> object:  # a publish is acked once in the stream; the log's table follows it
        found = await one.events.query(types=["content_viewed"], target_id=thing.id)
        return found.events and found

    page = await until_async(stored)
    assert [e.id for e in page.events] == [appended.id]

    seen = []

    async def follow() -> None:
        async for event in one.events.tail(after=page.events[0].position - 1, types=["content_viewed"]):
            seen.append(event)
            if len(seen) == 2:
                return

    following = asyncio.create_task(follow())
    second = await one.events.publish("content_viewed", target_id=thing.id)
    await asyncio.wait_for(following, 30)
    assert [e.id for e in seen] == [appended.id, second.id]
    assert one.events.cursor == seen[-1].position


async def test_search_answers_on_both_transports(one: One) -> None:
    result = await one.knowledge.search("how do hives survive winter", k=3)
    assert isinstance(result, SearchResult) and result.hits == []  # a fresh org has no knowledge yet


@pytest.mark.parametrize("transport", ["bus", "http"])
async def test_a_garbage_key_is_refused(transport: str, settings: Settings, gateway: str) -> None:
    with pytest.raises(Unauthenticated):
        if transport == "bus":
            await One.connect(nats_url=settings.nats_url, key="one_garbage_key")
        else:
            async with await One.connect(url=gateway, key="one_garbage_key") as one:
                await one.whoami()


