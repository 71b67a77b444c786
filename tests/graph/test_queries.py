"""Queries: filters, text search, the enrichment, traversal over cycles, keyset pages under inserts, isolation."""

import asyncio
from uuid import uuid4

import pytest

from services.graph.properties import MASK
from shared.contracts.graph import (
    CONNECTION_DELETE,
    CONNECTION_END,
    CONNECTION_QUERY,
    CONNECTION_UPDATE,
    NEIGHBORS,
    THING_ARCHIVE,
    THING_CREATE_BATCH,
    THING_DELETE,
    THING_GET,
    THING_QUERY,
    THING_UPDATE,
)
from shared.kernel.errors import InvalidRequest, NotFound
from shared.kernel.ontology import ThingType
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.graph.conftest import link, make_thing
from tests.graph.samples import valid_properties
from tests.tenancy.conftest import Account

_CREATOR = {"email": "c@example.test", "username": "c", "displayName": "C", "role": "org_user"}


async def names(bus: BusClient, owner: Account, **query: object) -> list[str]:
    return sorted(t.name for t in (await bus.request(THING_QUERY, query, owner.ctx)).things)


class TestThingQueries:
    async def test_by_type_status_and_name(self, bus: BusClient, owner: Account) -> None:
        await make_thing(bus, owner.ctx, "blog_post", "Marathon training plan")
        await make_thing(bus, owner.ctx, "blog_post", "Healthy breakfast", status="published")
        await make_thing(bus, owner.ctx, "video", "Marathon highlights", status="active")
        assert await names(bus, owner, type="blog_post") == ["Healthy breakfast", "Marathon training plan"]
        assert await names(bus, owner, status="published") == ["Healthy breakfast"]
        assert await names(bus, owner, text="marathon") == ["Marathon highlights", "Marathon training plan"]
        assert await names(bus, owner, text="marathon", type="video") == ["Marathon highlights"]

    async def test_by_property_filters(self, bus: BusClient, owner: Account) -> None:
        await make_thing(bus, owner.ctx, "creator", "fit", properties={**_CREATOR, "niche": ["fitness"], "totalFollowers": 20000})
        await make_thing(bus, owner.ctx, "creator", "small", properties={**_CREATOR, "niche": ["fitness"], "totalFollowers": 50})
        await make_thing(bus, owner.ctx, "creator", "cook", properties={**_CREATOR, "niche": ["food"], "totalFollowers": 90000})
        fitness_stars = [{"path": "niche", "op": "contains", "value": "fitness"}, {"path": "totalFollowers", "op": "gt", "value": 10000}]
        assert await names(bus, owner, type="creator", where=fitness_stars) == ["fit"]
        assert await names(bus, owner, where=[{"path": "niche", "value": ["food"]}]) == ["cook"]
        assert await names(bus, owner, where=[{"path": "totalFollowers", "op": "lte", "value": 20000}]) == ["fit", "small"]
        assert await names(bus, owner, where=[{"path": "brandColors.primary", "op": "exists"}]) == []

    async def test_a_filter_path_cannot_inject_jsonpath(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(InvalidRequest):
            await bus.request(THING_QUERY, {"where": [{"path": 'a" || true || "', "op": "gt", "value": 1}]}, owner.ctx)

    async def test_a_course_comes_with_its_owner(self, bus: BusClient, owner: Account) -> None:
        creator = await make_thing(bus, owner.ctx, "creator", "Ada", properties=_CREATOR)
        course = await make_thing(bus, owner.ctx, "course", "Run", properties={"title": "Run", "price": 1, "currency": "USD"})
        await link(bus, owner.ctx, creator.id, course.id, "owns", metadata={"revenueShare": 1.0})
        enriched = await bus.request(THING_GET, {"id": str(course.id), "include": ["owns"]}, owner.ctx)
        assert [r.thing.name for r in enriched.related] == ["Ada"]
        assert enriched.related[0].connection.from_id == creator.id

    async def test_connections_by_type_in_either_direction(self, bus: BusClient, owner: Account) -> None:
        a, b, c = [await make_thing(bus, owner.ctx, name=n) for n in "abc"]
        ab = await link(bus, owner.ctx, a.id, b.id, "references")
        cb = await link(bus, owner.ctx, c.id, b.id, "part_of")
        bc = await link(bus, owner.ctx, b.id, c.id, "references")

        async def ids(**query: object) -> set:
            page = await bus.request(CONNECTION_QUERY, {"thing_id": str(b.id), **query}, owner.ctx)
            return {x.id for x in page.connections}

        assert await ids(direction="in") == {ab.id, cb.id}
        assert await ids(direction="out") == {bc.id}
        assert await ids(types=["references"]) == {ab.id, bc.id}


class TestTraversal:
    async def test_a_traversal_over_a_cycle_terminates_with_shortest_depths(self, bus: BusClient, owner: Account) -> None:
        plugins = [await make_thing(bus, owner.ctx, "elizaos_plugin", f"p{i}",
                                    properties={"pluginMetadata": {"name": f"p{i}", "version": "1.0.0"}}) for i in range(5)]
        for i in range(5):  # p0 -> p1 -> p2 -> p3 -> p4 -> p0, and a shortcut p0 -> p2
            await link(bus, owner.ctx, plugins[i].id, plugins[(i + 1) % 5].id, "plugin_depends_on")
        await link(bus, owner.ctx, plugins[0].id, plugins[2].id, "plugin_depends_on")

        async def reach(depth: int, **query: object) -> dict[str, int]:
            found = await bus.request(NEIGHBORS, {"thing_id": str(plugins[0].id), "depth": depth, **query}, owner.ctx, timeout=5)
            return {n.thing.name: n.depth for n in found.neighbors}

        assert await reach(1) == {"p1": 1, "p2": 1}
        assert await reach(2) == {"p1": 1, "p2": 1, "p3": 2}
        assert await reach(6) == {"p1": 1, "p2": 1, "p3": 2, "p4": 3}, "the start is never its own neighbour"
        assert await reach(1, direction="in") == {"p4": 1}
        assert await reach(2, direction="both") == {"p1": 1, "p2": 1, "p4": 1, "p3": 2}
        assert await reach(6, types=["owns"]) == {}

    async def test_a_traversal_skips_deleted_things_and_ended_links_as_of_now(self, bus: BusClient, owner: Account) -> None:
        a, b, c, d = [await make_thing(bus, owner.ctx, name=n) for n in "abcd"]
        await link(bus, owner.ctx, a.id, b.id)
        await link(bus, owner.ctx, b.id, c.id)
        ad = await link(bus, owner.ctx, a.id, d.id)
        await bus.request(THING_DELETE, {"id": str(b.id)}, owner.ctx)
        await bus.request(CONNECTION_END, {"id": str(ad.id)}, owner.ctx)
        from datetime import UTC, datetime

        now = datetime.now(UTC).isoformat()
        found = await bus.request(NEIGHBORS, {"thing_id": str(a.id), "depth": 3, "as_of": now}, owner.ctx)
        assert found.neighbors == []

    async def test_a_traversal_replies_with_the_things_as_a_get_does(self, bus: BusClient, owner: Account) -> None:
        """The reply is encoded from the rows: each thing must be what a get returns (secrets masked)."""
        a = await make_thing(bus, owner.ctx)
        b = await make_thing(bus, owner.ctx, "external_connection", "b", properties=valid_properties(ThingType.EXTERNAL_CONNECTION))
        c = await make_thing(bus, owner.ctx, "lesson", "c", status="published")
        await link(bus, owner.ctx, a.id, b.id)
        await link(bus, owner.ctx, b.id, c.id)
        found = (await bus.request(NEIGHBORS, {"thing_id": str(a.id), "depth": 2}, owner.ctx)).neighbors
        assert [(n.thing, n.depth) for n in found] == [(b, 1), (c, 2)]
        assert found[0].thing.properties["apiKey"] == MASK

    async def test_too_deep_is_refused(self, bus: BusClient, owner: Account) -> None:
        a = await make_thing(bus, owner.ctx)
        with pytest.raises(InvalidRequest):
            await bus.request(NEIGHBORS, {"thing_id": str(a.id), "depth": 50}, owner.ctx)

    async def test_a_traversal_past_its_time_is_a_typed_refusal(
        self, bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A walk over a dense graph (every one of 10 things linked to every other: ~80k paths in 6 hops, a hundred
        milliseconds or more) stopped at `graph_traversal_timeout_ms` (1 ms here) is `invalid` with its reason, not
        an internal error; the next walk is answered."""
        ids = [t.id for t in (await bus.request(THING_CREATE_BATCH, {"things": [
            {"type": "lesson", "name": f"dense {n}"} for n in range(10)]}, owner.ctx)).things]
        await asyncio.gather(*(link(bus, owner.ctx, a, b) for a in ids for b in ids if a != b))
        monkeypatch.setattr(services["graph"].settings, "graph_max_depth", 6)
        monkeypatch.setattr(services["graph"].settings, "graph_traversal_timeout_ms", 1)
        with pytest.raises(InvalidRequest) as refused:
            await bus.request(NEIGHBORS, {"thing_id": str(ids[0]), "depth": 6}, owner.ctx)
        assert refused.value.details == {"reason": "traversal_timeout", "timeout_ms": 1}
        monkeypatch.undo()
        assert len((await bus.request(NEIGHBORS, {"thing_id": str(ids[0]), "depth": 2}, owner.ctx)).neighbors) == 9

    async def test_a_deleted_or_unknown_start_is_not_found(self, bus: BusClient, owner: Account) -> None:
        """The start thing is checked in the traversal's own statement (one round trip), as a get checks it."""
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        await link(bus, owner.ctx, a.id, b.id)
        assert [n.thing.id for n in (await bus.request(NEIGHBORS, {"thing_id": str(a.id)}, owner.ctx)).neighbors] == [b.id]
        await bus.request(THING_DELETE, {"id": str(a.id)}, owner.ctx)
        for start in (a.id, uuid4()):
            with pytest.raises(NotFound):
                await bus.request(NEIGHBORS, {"thing_id": str(start)}, owner.ctx)


class TestPagination:
    async def test_pages_return_every_row_once_while_rows_are_inserted(self, bus: BusClient, owner: Account) -> None:
        before = {(await make_thing(bus, owner.ctx, name=f"before {i}")).id for i in range(25)}
        seen: list = []
        cursor = None
        inserted: set = set()
        while True:
            query = {"limit": 4, **({"cursor": str(cursor)} if cursor else {})}
            page, *more = await asyncio.gather(
                bus.request(THING_QUERY, query, owner.ctx),
                *(make_thing(bus, owner.ctx, name="during") for _ in range(2)),
            )
            inserted |= {t.id for t in more}
            seen += [t.id for t in page.things]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), "no row twice"
        assert before <= set(seen), "every row that existed before"
        assert set(seen) <= before | inserted

    async def test_connection_pages_return_every_row_once(self, bus: BusClient, owner: Account) -> None:
        hub = await make_thing(bus, owner.ctx)
        made = set()
        for i in range(7):
            leaf = await make_thing(bus, owner.ctx, name=f"leaf {i}")
            made.add((await link(bus, owner.ctx, hub.id, leaf.id)).id)
        seen, cursor = [], None
        while True:
            page = await bus.request(CONNECTION_QUERY, {"thing_id": str(hub.id), "limit": 3, "cursor": cursor and str(cursor)}, owner.ctx)
            seen += [c.id for c in page.connections]
            if (cursor := page.next_cursor) is None:
                break
        assert sorted(seen) == sorted(made)


class TestIsolation:
    async def test_an_org_sees_none_of_another_orgs_things(self, bus: BusClient, owner: Account, stranger: Account) -> None:
        theirs = await make_thing(bus, stranger.ctx, "course", "Secret course", properties={"title": "S", "price": 1, "currency": "USD"})
        other = await make_thing(bus, stranger.ctx, "lesson", "Secret lesson")
        made = await link(bus, stranger.ctx, theirs.id, other.id, "part_of")
        assert (await bus.request(THING_QUERY, {"include_deleted": True}, owner.ctx)).things == []
        assert await names(bus, owner, text="secret") == []
        assert await names(bus, owner, type="course") == []
        assert await names(bus, owner, where=[{"path": "title", "value": "S"}]) == []
        for spec in (THING_GET, THING_ARCHIVE, THING_DELETE):
            with pytest.raises(NotFound):
                await bus.request(spec, {"id": str(theirs.id)}, owner.ctx)
        with pytest.raises(NotFound):
            await bus.request(THING_UPDATE, {"id": str(theirs.id), "name": "mine now"}, owner.ctx)
        with pytest.raises(NotFound):
            await bus.request(NEIGHBORS, {"thing_id": str(theirs.id), "depth": 2}, owner.ctx)
        for query in ({"thing_id": str(theirs.id)}, {"thing_id": str(other.id), "direction": "in"}):
            assert (await bus.request(CONNECTION_QUERY, query, owner.ctx)).connections == []
        for spec, body in ((CONNECTION_UPDATE, {"id": str(made.id), "strength": 0.1}), (CONNECTION_END, {"id": str(made.id)}),
                           (CONNECTION_DELETE, {"id": str(made.id)})):
            with pytest.raises(NotFound):
                await bus.request(spec, body, owner.ctx)
        still = await bus.request(THING_GET, {"id": str(theirs.id), "include": ["part_of"]}, stranger.ctx)
        assert still.thing.name == "Secret course" and len(still.related) == 1
