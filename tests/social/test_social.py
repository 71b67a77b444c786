"""Follows, reactions and comments over the bus, with their counts exact under concurrency (issue #24)."""

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.contracts.graph import CONNECTION_QUERY, IDENTITY_BACKFILL, THING_DELETE, THING_GET
from shared.contracts.graph.social import COMMENT, FOLLOW, REACT, UNFOLLOW, UNREACT
from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound
from shared.runtime.client import BusClient
from tests.graph.conftest import link, make_thing
from tests.social.conftest import people
from tests.tenancy.conftest import Account, add_member

SLOW = 120.0
"""Concurrent changes of one thing's counter wait for each other's commits: on a loaded machine, 50 take a while."""


async def _properties(bus: BusClient, owner: Account, thing_id: Any) -> dict[str, Any]:
    return (await bus.request(THING_GET, {"id": str(thing_id)}, owner.ctx)).thing.properties


async def _live_follows(admin: asyncpg.Connection, org_id: Any, followee: Any) -> int:
    return await admin.fetchval(
        "SELECT count(*) FROM graph.connections WHERE org_id = $1 AND to_id = $2 AND type = 'following'"
        " AND valid_to IS NULL", org_id, followee)


class TestFollow:
    async def test_fifty_concurrent_follows_count_exactly_and_a_repeat_counts_nothing(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        star, *fans = await people(bus, owner.ctx, 51)

        async def follow(fan: Any, spec: Any = FOLLOW) -> Any:
            return await bus.request(spec, {"followee_id": str(star.id), "follower_id": str(fan.id)}, owner.ctx,
                                     timeout=SLOW)

        done = await asyncio.gather(*(follow(fan) for fan in fans))
        assert all(d.changed for d in done)
        assert (await _properties(bus, owner, star.id))["totalFollowers"] == 50
        assert sorted(d.total_followers for d in done) == list(range(1, 51))  # each saw its own increment

        again = await asyncio.gather(*(follow(fan) for fan in fans[:10]))  # following twice is a no-op
        assert not any(d.changed for d in again) and {d.total_followers for d in again} == {50}
        assert (await _properties(bus, owner, fans[0].id))["totalFollowing"] == 1

        # 25 unfollow while the other 25 follow again (no-ops) and 10 unfollow twice (no-ops after the first)
        mixed = [follow(fan, UNFOLLOW) for fan in fans[:25]] + [follow(fan) for fan in fans[25:]]
        mixed += [follow(fan, UNFOLLOW) for fan in fans[:10]]
        await asyncio.gather(*mixed)
        assert (await _properties(bus, owner, star.id))["totalFollowers"] == 25
        assert await _live_follows(admin, owner.org_id, star.id) == 25
        assert (await _properties(bus, owner, fans[0].id))["totalFollowing"] == 0

        refollowed = await follow(fans[0])  # a new follow after an unfollow makes a new link: history stays
        assert refollowed.changed and refollowed.total_followers == 26
        links = await bus.request(CONNECTION_QUERY, {"thing_id": str(fans[0].id), "direction": "out",
                                                     "types": ["following"]}, owner.ctx)
        assert [c.valid_to is None for c in links.connections] == [False, True]

    async def test_the_caller_follows_as_themselves(self, bus: BusClient, owner: Account) -> None:
        await bus.request(IDENTITY_BACKFILL, {}, owner.ctx)  # the owner's person thing, with the person's id
        (idol,) = await people(bus, owner.ctx, 1)
        followed = await bus.request(FOLLOW, {"followee_id": str(idol.id)}, owner.ctx)
        assert followed.connection.from_id == owner.person_id and followed.total_followers == 1
        assert (await _properties(bus, owner, owner.person_id))["totalFollowing"] == 1

    async def test_only_people_and_agents_follow_and_are_followed(self, bus: BusClient, owner: Account) -> None:
        (fan,) = await people(bus, owner.ctx, 1)
        post = await make_thing(bus, owner.ctx, "blog_post")
        with pytest.raises(InvalidRequest):
            await bus.request(FOLLOW, {"followee_id": str(post.id), "follower_id": str(fan.id)}, owner.ctx)
        with pytest.raises(InvalidRequest):
            await bus.request(FOLLOW, {"followee_id": str(fan.id), "follower_id": str(fan.id)}, owner.ctx)
        agent = await make_thing(bus, owner.ctx, "sales_agent", "Closer", properties={"systemPrompt": "sell", "model": "m"})
        assert (await bus.request(FOLLOW, {"followee_id": str(agent.id), "follower_id": str(fan.id)}, owner.ctx)).changed

    async def test_another_orgs_things_are_not_found(self, bus: BusClient, owner: Account, stranger: Account) -> None:
        (mine,) = await people(bus, owner.ctx, 1)
        (theirs,) = await people(bus, stranger.ctx, 1)
        with pytest.raises(NotFound):
            await bus.request(FOLLOW, {"followee_id": str(mine.id), "follower_id": str(theirs.id)}, stranger.ctx)
        with pytest.raises(NotFound):
            await bus.request(REACT, {"target_id": str(mine.id), "reactor_id": str(theirs.id)}, stranger.ctx)
        assert "totalFollowers" not in await _properties(bus, owner, mine.id)

    async def test_a_second_live_follow_made_as_a_plain_connection_is_a_conflict(
        self, bus: BusClient, owner: Account
    ) -> None:
        a, b = await people(bus, owner.ctx, 2)
        await bus.request(FOLLOW, {"followee_id": str(b.id), "follower_id": str(a.id)}, owner.ctx)
        with pytest.raises(Conflict):
            await link(bus, owner.ctx, a.id, b.id, "following")

    async def test_a_member_cannot_act_as_someone_else(self, bus: BusClient, owner: Account) -> None:
        member = await add_member(bus, owner, role="customer")
        a, b = await people(bus, owner.ctx, 2)
        with pytest.raises(Forbidden):
            await bus.request(FOLLOW, {"followee_id": str(a.id), "follower_id": str(b.id)}, member.ctx)


class TestReactions:
    async def test_reactions_count_per_kind_once_per_reactor(self, bus: BusClient, owner: Account) -> None:
        post = await make_thing(bus, owner.ctx, "social_post", "Hello")
        fans = await people(bus, owner.ctx, 20)

        async def react(fan: Any, kind: str, spec: Any = REACT) -> Any:
            return await bus.request(spec, {"target_id": str(post.id), "reactor_id": str(fan.id), "kind": kind},
                                     owner.ctx, timeout=SLOW)

        await asyncio.gather(*(react(fan, "like") for fan in fans), *(react(fan, "👍") for fan in fans[:5]),
                             *(react(fan, "like") for fan in fans[:5]))  # the repeats count nothing
        props = await _properties(bus, owner, post.id)
        assert (props["totalReactions"], props["reactionCounts"]) == (25, {"like": 20, "👍": 5})
        removed = await react(fans[0], "like", UNREACT)
        assert removed.changed and removed.total_reactions == 24 and removed.reaction_counts == {"like": 19, "👍": 5}
        assert not (await react(fans[0], "like", UNREACT)).changed
        links = await bus.request(CONNECTION_QUERY, {"thing_id": str(post.id), "direction": "in",
                                                     "types": ["participated_in"]}, owner.ctx)
        assert {c.metadata["reaction"] for c in links.connections} == {"like", "👍"}
        assert all(c.metadata["interactionType"] == "reaction" for c in links.connections)

    async def test_a_person_is_not_reacted_to(self, bus: BusClient, owner: Account) -> None:
        a, b = await people(bus, owner.ctx, 2)
        with pytest.raises(InvalidRequest):
            await bus.request(REACT, {"target_id": str(a.id), "reactor_id": str(b.id)}, owner.ctx)
        with pytest.raises(InvalidRequest):  # a kind is one word or symbol
            await bus.request(REACT, {"target_id": str(a.id), "reactor_id": str(b.id), "kind": "two words"}, owner.ctx)


class TestComments:
    async def test_a_comment_is_a_message_thing_linked_and_counted(self, bus: BusClient, owner: Account) -> None:
        post = await make_thing(bus, owner.ctx, "blog_post", "Essay")
        fans = await people(bus, owner.ctx, 8)
        made = await asyncio.gather(*(bus.request(COMMENT, {"target_id": str(post.id), "author_id": str(fan.id),
                                                            "content": f"nice one, #{i}"}, owner.ctx, timeout=SLOW)
                                      for i, fan in enumerate(fans)))
        assert (await _properties(bus, owner, post.id))["totalComments"] == 8
        first = made[0]
        assert first.comment.type == "message" and first.comment.properties["content"] == "nice one, #0"
        assert (first.connection.type, first.connection.from_id, first.connection.to_id) == (
            "references", first.comment.id, post.id)
        authored = await bus.request(CONNECTION_QUERY, {"thing_id": str(first.comment.id), "direction": "in",
                                                        "types": ["authored"]}, owner.ctx)
        assert [c.from_id for c in authored.connections] == [fans[0].id]
        reply = await bus.request(COMMENT, {"target_id": str(first.comment.id), "author_id": str(fans[1].id),
                                            "content": "thanks"}, owner.ctx)  # a comment on a comment
        assert reply.total_comments == 1

    async def test_a_deleted_or_foreign_target_is_not_found_and_nothing_is_written(
        self, bus: BusClient, owner: Account, stranger: Account, admin: asyncpg.Connection
    ) -> None:
        post = await make_thing(bus, owner.ctx, "blog_post")
        (fan,) = await people(bus, owner.ctx, 1)
        (outsider,) = await people(bus, stranger.ctx, 1)
        with pytest.raises(NotFound):
            await bus.request(COMMENT, {"target_id": str(post.id), "author_id": str(outsider.id), "content": "x"},
                              stranger.ctx)
        await bus.request(THING_DELETE, {"id": str(post.id)}, owner.ctx)
        with pytest.raises(NotFound):
            await bus.request(COMMENT, {"target_id": str(post.id), "author_id": str(fan.id), "content": "x"},
                              owner.ctx)
        messages = await admin.fetchval("SELECT count(*) FROM graph.things WHERE org_id = ANY($1) AND type = 'message'",
                                        [owner.org_id, stranger.org_id])
        assert messages == 0
