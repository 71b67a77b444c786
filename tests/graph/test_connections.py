"""Connections over the bus: every type, granular names, cross-org and self links, validity, lifecycle."""

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.contracts.graph import (
    CONNECTION_DELETE,
    CONNECTION_END,
    CONNECTION_QUERY,
    CONNECTION_UPDATE,
    THING_DELETE,
    THING_RESTORE,
)
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology import PROTOCOL_CONNECTION_TYPES, ConnectionType
from shared.runtime.client import BusClient
from tests.graph.conftest import link, make_thing
from tests.tenancy.conftest import Account


class TestCreate:
    @pytest.mark.parametrize("connection_type", list(ConnectionType))
    async def test_every_connection_type_links_two_things(
        self, bus: BusClient, owner: Account, connection_type: ConnectionType
    ) -> None:
        a = await make_thing(bus, owner.ctx, "audience_member", "a")
        b = await make_thing(bus, owner.ctx, "course", "b", properties={"title": "t", "price": 1, "currency": "USD"})
        made = await link(bus, owner.ctx, a.id, b.id, connection_type.value, metadata={"note": "x"}, strength=0.5)
        assert (made.type, made.from_id, made.to_id, made.strength) == (connection_type, a.id, b.id, 0.5)
        assert made.metadata["note"] == "x" and made.valid_to is None
        if connection_type in PROTOCOL_CONNECTION_TYPES:
            assert made.metadata["protocol"] == "native"
        page = await bus.request(CONNECTION_QUERY, {"thing_id": str(b.id), "direction": "in", "types": [connection_type.value]}, owner.ctx)
        assert [c.id for c in page.connections] == [made.id]

    async def test_a_granular_name_is_stored_as_its_consolidated_type(self, bus: BusClient, owner: Account) -> None:
        agent = await make_thing(bus, owner.ctx, "external_agent", properties={"platform": "elizaos", "agentId": "e", "name": "E"})
        clone = await make_thing(bus, owner.ctx, "ai_clone", properties={"systemPrompt": "hi"})
        made = await link(bus, owner.ctx, agent.id, clone.id, "communicates_with", metadata={"protocol": "a2a", "messageType": "task"})
        assert made.type == "communicated" and made.metadata == {"protocol": "a2a", "messageType": "task"}

    async def test_an_inverse_granular_name_swaps_the_ends(self, bus: BusClient, owner: Account) -> None:
        course = await make_thing(bus, owner.ctx, "course", properties={"title": "t", "price": 1, "currency": "USD"})
        clone = await make_thing(bus, owner.ctx, "ai_clone", properties={"systemPrompt": "hi"})
        made = await link(bus, owner.ctx, course.id, clone.id, "taught_by")
        assert (made.type, made.from_id, made.to_id) == ("teaching", clone.id, course.id)

    async def test_an_unknown_protocol_is_refused(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        with pytest.raises(InvalidRequest):
            await link(bus, owner.ctx, a.id, b.id, "transacted", metadata={"protocol": "carrier-pigeon"})

    async def test_an_unknown_type_is_refused(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        with pytest.raises(InvalidRequest) as refused:
            await link(bus, owner.ctx, a.id, b.id, "loves")
        assert refused.value.code == "unknown_ontology_type"

    @pytest.mark.parametrize("strength", [-0.1, 1.01])
    async def test_strength_outside_zero_to_one_is_refused(self, bus: BusClient, owner: Account, strength: float) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        with pytest.raises(InvalidRequest):
            await link(bus, owner.ctx, a.id, b.id, strength=strength)

    async def test_a_revenue_share_above_one_is_refused(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        with pytest.raises(InvalidRequest):
            await link(bus, owner.ctx, a.id, b.id, "owns", metadata={"revenueShare": 1.3})

    async def test_a_self_link_is_refused(self, bus: BusClient, owner: Account) -> None:
        a = await make_thing(bus, owner.ctx)
        with pytest.raises(InvalidRequest) as refused:
            await link(bus, owner.ctx, a.id, a.id, "references")
        assert refused.value.code == "self_link"

    async def test_a_missing_or_deleted_end_is_refused(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        with pytest.raises(NotFound):
            await link(bus, owner.ctx, a.id, uuid7())
        await bus.request(THING_DELETE, {"id": str(b.id)}, owner.ctx)
        with pytest.raises(NotFound):
            await link(bus, owner.ctx, a.id, b.id)

    async def test_validity_must_not_end_before_it_starts(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        now = datetime.now(UTC)
        with pytest.raises(InvalidRequest):
            await link(bus, owner.ctx, a.id, b.id, valid_from=now.isoformat(), valid_to=(now - timedelta(days=1)).isoformat())


class TestCrossOrg:
    async def test_a_cross_org_connection_is_refused(self, bus: BusClient, owner: Account, stranger: Account) -> None:
        mine, theirs = await make_thing(bus, owner.ctx), await make_thing(bus, stranger.ctx)
        for from_id, to_id in ((mine.id, theirs.id), (theirs.id, mine.id)):
            with pytest.raises(NotFound):
                await link(bus, owner.ctx, from_id, to_id)
        assert (await bus.request(CONNECTION_QUERY, {"thing_id": str(mine.id)}, owner.ctx)).connections == []

    async def test_the_database_refuses_a_cross_org_row_too(
        self, bus: BusClient, owner: Account, stranger: Account, admin: asyncpg.Connection
    ) -> None:
        mine, theirs = await make_thing(bus, owner.ctx), await make_thing(bus, stranger.ctx)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await admin.execute(
                "INSERT INTO graph.connections (id, org_id, from_id, to_id, type) VALUES ($1, $2, $3, $4, 'owns')",
                uuid7(), owner.org_id, mine.id, theirs.id,
            )


class TestLifecycle:
    async def test_metadata_is_merged_and_the_change_recorded(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        made = await link(bus, owner.ctx, a.id, b.id, "enrolled_in", metadata={"progress": 0.1, "enrolledAt": 1})
        updated = await bus.request(CONNECTION_UPDATE, {"id": str(made.id), "metadata": {"progress": 0.45}, "strength": 0.9}, owner.ctx)
        assert updated.metadata == {"progress": 0.45, "enrolledAt": 1} and updated.strength == 0.9
        rows = await admin.fetch("SELECT envelope FROM graph.outbox ORDER BY created_at")
        events = [json.loads(bytes(r["envelope"])) for r in rows]
        mine = [e for e in events if e["payload"].get("target_id") == str(made.id)]
        assert [e["type"] for e in mine] == ["entity_created", "entity_updated"]
        assert mine[0]["payload"]["metadata"]["connectionType"] == "enrolled_in"

    async def test_ending_sets_valid_to_once(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        made = await link(bus, owner.ctx, a.id, b.id, "member_of")
        ended = await bus.request(CONNECTION_END, {"id": str(made.id)}, owner.ctx)
        assert ended.valid_to is not None and ended.valid_to >= ended.valid_from
        with pytest.raises(Conflict):
            await bus.request(CONNECTION_END, {"id": str(made.id)}, owner.ctx)

    async def test_a_deleted_connection_is_gone(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        made = await link(bus, owner.ctx, a.id, b.id)
        await bus.request(CONNECTION_DELETE, {"id": str(made.id)}, owner.ctx)
        with pytest.raises(NotFound):
            await bus.request(CONNECTION_DELETE, {"id": str(made.id)}, owner.ctx)
        assert (await bus.request(CONNECTION_QUERY, {"thing_id": str(a.id)}, owner.ctx)).connections == []


class TestDeletedEnds:
    async def test_connections_to_a_deleted_thing_are_hidden_until_it_is_restored(self, bus: BusClient, owner: Account) -> None:
        a, b = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        made = await link(bus, owner.ctx, a.id, b.id)
        await bus.request(THING_DELETE, {"id": str(b.id)}, owner.ctx)
        assert (await bus.request(CONNECTION_QUERY, {"thing_id": str(a.id)}, owner.ctx)).connections == []
        await bus.request(THING_RESTORE, {"id": str(b.id)}, owner.ctx)
        assert [c.id for c in (await bus.request(CONNECTION_QUERY, {"thing_id": str(a.id)}, owner.ctx)).connections] == [made.id]


class TestTemporal:
    async def test_as_of_shows_what_was_valid_then(self, bus: BusClient, owner: Account) -> None:
        user, org_thing = await make_thing(bus, owner.ctx, "audience_member"), await make_thing(bus, owner.ctx, "community")
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        old = await link(bus, owner.ctx, user.id, org_thing.id, "member_of", valid_from=t0.isoformat(),
                         valid_to=(t0 + timedelta(days=30)).isoformat())
        new = await link(bus, owner.ctx, user.id, org_thing.id, "moderates", valid_from=(t0 + timedelta(days=60)).isoformat())

        async def valid_at(moment: datetime) -> list:
            page = await bus.request(CONNECTION_QUERY, {"thing_id": str(user.id), "as_of": moment.isoformat()}, owner.ctx)
            return [c.id for c in page.connections]

        assert await valid_at(t0 - timedelta(days=1)) == []
        assert await valid_at(t0 + timedelta(days=10)) == [old.id]
        assert await valid_at(t0 + timedelta(days=30)) == [], "validTo is exclusive"
        assert await valid_at(t0 + timedelta(days=90)) == [new.id]
        everything = await bus.request(CONNECTION_QUERY, {"thing_id": str(user.id)}, owner.ctx)
        assert {c.id for c in everything.connections} == {old.id, new.id}


class TestWrittenWithANewThing:
    """`ThingCreate.connections`: links written in the new thing's transaction, all or none, once per idempotency key
    (what an ACP settlement writes: its payment thing with the sale's `transacted` links)."""

    async def test_links_are_written_with_the_thing_and_an_end_left_out_is_the_thing(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        post, teacher = await make_thing(bus, owner.ctx), await make_thing(bus, owner.ctx)
        made = await make_thing(bus, owner.ctx, connections=[
            {"to_id": str(post.id), "type": "part_of"},
            {"from_id": str(teacher.id), "type": "taught_by", "metadata": {"role": "author"}, "strength": 0.5}])
        links = (await bus.request(CONNECTION_QUERY, {"thing_id": str(made.id)}, owner.ctx)).connections
        part_of = next(c for c in links if c.type == "part_of")
        taught = next(c for c in links if c is not part_of)
        assert (part_of.from_id, part_of.to_id) == (made.id, post.id)
        assert (taught.from_id, taught.to_id, taught.strength) == (made.id, teacher.id, 0.5)  # taught_by: swapped
        events = [json.loads(bytes(r["envelope"])) for r in await admin.fetch("SELECT envelope FROM graph.outbox")]
        told = {e["payload"]["target_id"] for e in events if e["type"] == "entity_created"}
        assert {str(part_of.id), str(taught.id)} <= told

    async def test_a_repeated_key_writes_no_link_again_and_a_changed_one_conflicts(
        self, bus: BusClient, owner: Account
    ) -> None:
        other = await make_thing(bus, owner.ctx)
        request = {"idempotency_key": f"k-{uuid7()}", "connections": [{"to_id": str(other.id), "type": "references"}]}
        first = await make_thing(bus, owner.ctx, **request)
        again = await make_thing(bus, owner.ctx, **request)
        assert again.id == first.id
        assert len((await bus.request(CONNECTION_QUERY, {"thing_id": str(first.id)}, owner.ctx)).connections) == 1
        with pytest.raises(Conflict):
            await make_thing(bus, owner.ctx, **{**request, "connections": [{"to_id": str(other.id), "type": "owns"}]})

    async def test_a_missing_end_writes_neither_thing_nor_link(
        self, bus: BusClient, owner: Account, stranger: Account, admin: asyncpg.Connection
    ) -> None:
        theirs = await make_thing(bus, stranger.ctx)
        before = await admin.fetchval("SELECT count(*) FROM graph.things WHERE org_id = $1", owner.org_id)
        for end in (theirs.id, uuid7()):
            with pytest.raises(NotFound):
                await make_thing(bus, owner.ctx, name="orphan", connections=[{"to_id": str(end), "type": "references"}])
        assert await admin.fetchval("SELECT count(*) FROM graph.things WHERE org_id = $1", owner.org_id) == before

    async def test_links_need_the_right_to_create_connections(self, bus: BusClient, owner: Account) -> None:
        other = await make_thing(bus, owner.ctx)
        writer = AuthContext(owner.org_id, owner.ctx.actor_id, "org_user", ("allow:things:create:0",))
        assert await make_thing(bus, writer, name="plain")  # the right it has
        with pytest.raises(Forbidden):
            await make_thing(bus, writer, connections=[{"to_id": str(other.id), "type": "references"}])
