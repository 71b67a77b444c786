"""Things over the bus: every type, precise validation errors, lifecycle, idempotency, quotas, secrets, events."""

import asyncio
import json

import asyncpg
import pytest

from services.graph.properties import MASK, is_structured
from shared.contracts.graph import (
    THING_ARCHIVE,
    THING_CREATE_BATCH,
    THING_DELETE,
    THING_GET,
    THING_QUERY,
    THING_RESTORE,
    THING_UPDATE,
)
from shared.contracts.tenancy import QUOTA_SET
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound, QuotaExceeded
from shared.kernel.ontology import ThingType
from shared.runtime.client import BusClient
from tests.graph.conftest import make_thing
from tests.graph.samples import INVALID, valid_properties
from tests.tenancy.conftest import Account, add_member


class TestCreate:
    @pytest.mark.parametrize("thing_type", list(ThingType))
    async def test_every_thing_type_is_created_with_valid_properties(
        self, bus: BusClient, owner: Account, thing_type: ThingType
    ) -> None:
        thing = await make_thing(bus, owner.ctx, thing_type.value, f"a {thing_type.value}", properties=valid_properties(thing_type))
        assert thing.type == thing_type
        assert thing.status == "draft" and thing.version == 1
        assert thing.properties["kind"] == "sample", "an unknown extra property is kept"
        fetched = (await bus.request(THING_GET, {"id": str(thing.id)}, owner.ctx)).thing
        assert fetched == thing

    @pytest.mark.parametrize("thing_type", sorted(INVALID, key=str))
    async def test_invalid_properties_are_refused_naming_the_property(
        self, bus: BusClient, owner: Account, thing_type: ThingType
    ) -> None:
        properties, culprit = INVALID[thing_type]
        with pytest.raises(InvalidRequest) as refused:
            await make_thing(bus, owner.ctx, thing_type.value, properties=properties)
        assert refused.value.code == "invalid_properties"
        assert refused.value.details["errors"][0]["loc"][0] == culprit
        assert culprit in refused.value.message
        page = await bus.request(THING_QUERY, {"type": thing_type.value}, owner.ctx)
        assert page.things == []

    def test_every_structured_type_has_an_invalid_sample(self) -> None:
        assert {t for t in ThingType if is_structured(t)} == set(INVALID)

    async def test_properties_must_be_an_object(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(InvalidRequest) as refused:
            await make_thing(bus, owner.ctx, "video", properties=["not", "an", "object"])
        assert refused.value.code == "invalid"

    async def test_unknown_type_is_refused(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(InvalidRequest) as refused:
            await make_thing(bus, owner.ctx, "spaceship")
        assert refused.value.code == "unknown_ontology_type"

    async def test_empty_name_is_refused(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(InvalidRequest):
            await make_thing(bus, owner.ctx, name="   ")

    async def test_folded_type_is_stored_as_its_thing_type(self, bus: BusClient, owner: Account) -> None:
        thing = await make_thing(bus, owner.ctx, "intent_mandate", properties={"intent": {"q": "shoes"}})
        assert thing.type == "mandate" and thing.properties["mandateType"] == "intent"

    async def test_a_retry_with_the_same_key_returns_the_same_thing(self, bus: BusClient, owner: Account) -> None:
        first, again = await asyncio.gather(
            make_thing(bus, owner.ctx, idempotency_key="k-1"), make_thing(bus, owner.ctx, idempotency_key="k-1")
        )
        assert first.id == again.id
        assert len((await bus.request(THING_QUERY, {}, owner.ctx)).things) == 1

    async def test_the_same_key_for_another_thing_is_a_conflict(self, bus: BusClient, owner: Account) -> None:
        await make_thing(bus, owner.ctx, name="one", idempotency_key="k-2")
        with pytest.raises(Conflict) as refused:
            await make_thing(bus, owner.ctx, name="two", idempotency_key="k-2")
        assert refused.value.code == "idempotency_conflict"

    async def test_a_batch_creates_in_order(self, bus: BusClient, owner: Account) -> None:
        batch = [{"type": "lesson", "name": f"lesson {i}"} for i in range(5)]
        created = (await bus.request(THING_CREATE_BATCH, {"things": batch}, owner.ctx)).things
        assert [t.name for t in created] == [f"lesson {i}" for i in range(5)]

    async def test_a_batch_replies_with_the_things_as_stored(self, bus: BusClient, owner: Account) -> None:
        """The batch reply is encoded from the rows it inserted, not read back: it must be what a get returns,
        secrets masked and folded types resolved, down to the timestamps the database chose."""
        batch = [
            {"type": "lesson", "name": "plain"},
            {"type": "external_connection", "name": "secret", "properties": valid_properties(ThingType.EXTERNAL_CONNECTION)},
            {"type": "intent_mandate", "name": "folded", "properties": valid_properties(ThingType.MANDATE), "status": "active"},
            {"type": "lesson", "name": "keyed", "idempotency_key": "k-reply", "properties": {"gone": None, "n": 1.5}},
        ]
        created = (await bus.request(THING_CREATE_BATCH, {"things": batch}, owner.ctx)).things
        stored = [await bus.request(THING_GET, {"id": str(t.id)}, owner.ctx) for t in created]
        assert created == [s.thing for s in stored]
        assert created[1].properties["apiKey"] == MASK and created[2].properties["mandateType"] == "intent"
        assert created[3].properties == {"n": 1.5} and created[0].version == 1 and created[0].deleted_at is None

    async def test_a_batch_repeating_a_key_creates_it_once(self, bus: BusClient, owner: Account) -> None:
        same = {"type": "lesson", "name": "twice", "idempotency_key": "k-3"}
        created = (await bus.request(THING_CREATE_BATCH, {"things": [same, {"type": "lesson", "name": "other"}, same]}, owner.ctx)).things
        assert created[0].id == created[2].id != created[1].id
        again = (await bus.request(THING_CREATE_BATCH, {"things": [same]}, owner.ctx)).things
        assert again[0].id == created[0].id
        assert len((await bus.request(THING_QUERY, {}, owner.ctx)).things) == 2

    async def test_a_batch_with_one_invalid_thing_creates_nothing(self, bus: BusClient, owner: Account) -> None:
        batch = [{"type": "lesson", "name": "ok"}, {"type": "course", "name": "bad", "properties": {"price": -1}}]
        with pytest.raises(InvalidRequest):
            await bus.request(THING_CREATE_BATCH, {"things": batch}, owner.ctx)
        assert (await bus.request(THING_QUERY, {}, owner.ctx)).things == []


class TestSecrets:
    async def test_secrets_are_masked_in_replies_but_kept(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        thing = await make_thing(bus, owner.ctx, "external_connection", properties=valid_properties(ThingType.EXTERNAL_CONNECTION))
        assert thing.properties["apiKey"] == MASK
        assert thing.properties["authentication"]["credentials"] == MASK
        stored = json.loads(await admin.fetchval("SELECT properties FROM graph.things WHERE id = $1", thing.id))
        assert stored["apiKey"].startswith("sealed:v2:") and "sk-live-123" not in json.dumps(stored)  # docs/sealing.md
        updated = await bus.request(THING_UPDATE, {"id": str(thing.id), "properties": {**thing.properties, "name": "renamed"}}, owner.ctx)
        assert updated.properties["apiKey"] == MASK
        kept = json.loads(await admin.fetchval("SELECT properties FROM graph.things WHERE id = $1", thing.id))
        assert kept["apiKey"] == stored["apiKey"] and kept["name"] == "renamed"

    async def test_secret_properties_cannot_be_filtered_on(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(InvalidRequest):
            await bus.request(THING_QUERY, {"where": [{"path": "apiKey", "value": "sk-live-123"}]}, owner.ctx)


class TestUpdate:
    async def test_partial_update_merges_properties_and_bumps_the_version(self, bus: BusClient, owner: Account) -> None:
        course = await make_thing(bus, owner.ctx, "course", properties={"title": "Run", "price": 10, "currency": "USD"})
        updated = await bus.request(
            THING_UPDATE, {"id": str(course.id), "properties": {"price": 20, "thumbnail": "t.png"}, "expected_version": 1}, owner.ctx
        )
        assert updated.version == 2 and updated.name == course.name
        assert updated.properties["price"] == 20 and updated.properties["title"] == "Run"
        removed = await bus.request(THING_UPDATE, {"id": str(course.id), "properties": {"thumbnail": None}}, owner.ctx)
        assert "thumbnail" not in removed.properties

    async def test_a_stale_version_is_a_conflict(self, bus: BusClient, owner: Account) -> None:
        thing = await make_thing(bus, owner.ctx)
        await bus.request(THING_UPDATE, {"id": str(thing.id), "name": "first", "expected_version": 1}, owner.ctx)
        with pytest.raises(Conflict) as refused:
            await bus.request(THING_UPDATE, {"id": str(thing.id), "name": "second", "expected_version": 1}, owner.ctx)
        assert refused.value.code == "version_conflict" and refused.value.details["version"] == 2

    async def test_an_update_must_keep_properties_valid(self, bus: BusClient, owner: Account) -> None:
        course = await make_thing(bus, owner.ctx, "course", properties={"title": "Run", "price": 10, "currency": "USD"})
        with pytest.raises(InvalidRequest) as refused:
            await bus.request(THING_UPDATE, {"id": str(course.id), "properties": {"price": None}}, owner.ctx)
        assert refused.value.code == "invalid_properties"

    async def test_status_follows_the_allowed_transitions(self, bus: BusClient, owner: Account) -> None:
        thing = await make_thing(bus, owner.ctx)
        published = await bus.request(THING_UPDATE, {"id": str(thing.id), "status": "published"}, owner.ctx)
        assert published.status == "published"
        archived = await bus.request(THING_ARCHIVE, {"id": str(thing.id)}, owner.ctx)
        assert archived.status == "archived"
        with pytest.raises(Conflict) as refused:
            await bus.request(THING_UPDATE, {"id": str(thing.id), "status": "published"}, owner.ctx)
        assert refused.value.code == "invalid_transition"
        assert (await bus.request(THING_UPDATE, {"id": str(thing.id), "status": "inactive"}, owner.ctx)).status == "inactive"


class TestDeleteAndRestore:
    async def test_a_deleted_thing_disappears_and_comes_back(self, bus: BusClient, owner: Account) -> None:
        thing = await make_thing(bus, owner.ctx)
        await bus.request(THING_DELETE, {"id": str(thing.id)}, owner.ctx)
        with pytest.raises(NotFound):
            await bus.request(THING_GET, {"id": str(thing.id)}, owner.ctx)
        assert (await bus.request(THING_QUERY, {}, owner.ctx)).things == []
        assert len((await bus.request(THING_QUERY, {"include_deleted": True}, owner.ctx)).things) == 1
        restored = await bus.request(THING_RESTORE, {"id": str(thing.id)}, owner.ctx)
        assert restored.deleted_at is None
        assert (await bus.request(THING_GET, {"id": str(thing.id)}, owner.ctx)).thing.id == thing.id


class TestQuota:
    async def test_live_things_count_against_the_org_quota(self, bus: BusClient, owner: Account) -> None:
        await bus.request(QUOTA_SET, {"metric": "things", "limit": 2}, owner.ctx)
        first = await make_thing(bus, owner.ctx)
        await make_thing(bus, owner.ctx)
        with pytest.raises(QuotaExceeded):
            await make_thing(bus, owner.ctx)
        await bus.request(THING_DELETE, {"id": str(first.id)}, owner.ctx)
        await make_thing(bus, owner.ctx)
        with pytest.raises(QuotaExceeded):
            await bus.request(THING_RESTORE, {"id": str(first.id)}, owner.ctx)
        assert len((await bus.request(THING_QUERY, {}, owner.ctx)).things) == 2


class TestAccess:
    async def test_a_customer_may_read_but_not_create(self, bus: BusClient, owner: Account) -> None:
        customer = await add_member(bus, owner, role="customer")
        thing = await make_thing(bus, owner.ctx)
        assert (await bus.request(THING_GET, {"id": str(thing.id)}, customer.ctx)).thing.id == thing.id
        with pytest.raises(Forbidden):
            await make_thing(bus, customer.ctx)

    async def test_a_context_without_permissions_may_do_nothing(self, bus: BusClient, org: AuthContext) -> None:
        with pytest.raises(Forbidden):
            await bus.request(THING_QUERY, {}, org)


class TestEvents:
    async def test_each_mutation_stages_its_event(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        course = await make_thing(bus, owner.ctx, "course", properties={"title": "Run", "price": 1, "currency": "USD"})
        await bus.request(THING_UPDATE, {"id": str(course.id), "name": "Run fast"}, owner.ctx)
        await bus.request(THING_ARCHIVE, {"id": str(course.id)}, owner.ctx)
        await bus.request(THING_DELETE, {"id": str(course.id)}, owner.ctx)
        rows = await admin.fetch("SELECT envelope FROM graph.outbox ORDER BY created_at")
        events = [json.loads(bytes(r["envelope"])) for r in rows]
        mine = [e for e in events if e["payload"].get("target_id") == str(course.id)]
        assert [e["type"] for e in mine] == ["course_created", "entity_updated", "entity_archived", "entity_deleted"]
        assert all(e["org_id"] == str(owner.org_id) and e["actor_id"] == str(owner.person_id) for e in mine)
        assert mine[1]["payload"]["metadata"] == {"entityType": "course", "changes": {"name": "Run fast"}, "version": 2}

    async def test_a_batch_stages_the_same_events_as_single_creates(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        single = await make_thing(bus, owner.ctx, "lesson", "single")
        batch = [{"type": "lesson", "name": f"b{i}"} for i in range(3)]
        created = (await bus.request(THING_CREATE_BATCH, {"things": batch}, owner.ctx)).things
        rows = await admin.fetch("SELECT subject, envelope FROM graph.outbox ORDER BY created_at")
        by_target = {}
        for row in rows:
            envelope = json.loads(bytes(row["envelope"]))
            by_target[envelope["payload"].get("target_id")] = (row["subject"], envelope)
        shapes = set()
        for thing in [single, *created]:
            subject, envelope = by_target[str(thing.id)]
            assert subject == f"one.events.native.{owner.org_id}.entity_created"
            assert envelope["type"] == "entity_created" and envelope["actor_id"] == str(owner.person_id)
            assert envelope["payload"]["metadata"] == {"entityType": "lesson", "name": thing.name, "status": "draft"}
            shapes.add(tuple(sorted(envelope)))
        assert len(shapes) == 1, "bulk-staged envelopes have exactly the fields of emitted ones"
