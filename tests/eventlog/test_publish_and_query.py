"""Publishing through `event.append` and reading back: filters, history, cursors, org isolation."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from shared.contracts.eventlog import APPEND
from shared.kernel.envelope import AuthContext, Envelope, Protocol
from shared.kernel.errors import InvalidRequest
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.tools.sdk.events import Events
from tests.eventlog.conftest import owner_of, stored_count, wait_for_events

pytestmark = pytest.mark.usefixtures("services")


class TestAppend:
    async def test_granular_name_is_stored_as_consolidated_type_with_variant(
        self, events: Events, admin: asyncpg.Connection, org: AuthContext
    ) -> None:
        appended = await events.publish("task_delegated", metadata={"protocol": "a2a", "task": "research"})
        assert appended.type == "task_event"
        await wait_for_events(admin, org.org_id, 1)
        [event] = (await events.query()).events
        assert (event.type, event.metadata) == ("task_event", {"protocol": "a2a", "task": "research", "action": "delegated"})
        assert (event.org_id, event.actor_id, event.protocol) == (org.org_id, org.actor_id, "a2a")
        assert event.trace_id is not None and len(event.trace_id) == 32

    async def test_retried_request_with_the_same_envelope_is_stored_once(
        self, bus: BusClient, admin: asyncpg.Connection, org: AuthContext
    ) -> None:
        request = Envelope(type=APPEND.type, org_id=org.org_id, actor_id=org.actor_id, role=org.role,
                           permissions=org.permissions, payload={"type": "user_login"})
        first = await bus.send(APPEND, request)
        again = await bus.send(APPEND, request)
        assert first.id == again.id == request.id and again.duplicate
        batch = [{"type": "user_logout"}, {"type": "dashboard_viewed"}]
        for _ in range(2):
            await bus.send(APPEND, request)
        events = Events.over_bus(bus, org)
        appended = await events.publish_many(batch)
        await wait_for_events(admin, org.org_id, 3)
        assert await stored_count(admin, org.org_id) == 3
        assert len({a.id for a in appended}) == 2

    async def test_protocol_specific_event_without_protocol_is_refused(self, events: Events) -> None:
        with pytest.raises(InvalidRequest) as refused:
            await events.publish("payment_processed", metadata={"amount": 5})
        assert refused.value.details["reason"] == "missing_protocol"

    async def test_client_names_the_protocol_it_publishes_over(
        self, bus: BusClient, admin: asyncpg.Connection, org: AuthContext
    ) -> None:
        appended = await Events.over_bus(bus, org, protocol=Protocol.X402).publish("payment_event", metadata={"amount": 5})
        assert appended.subject.startswith("one.events.x402.")
        await wait_for_events(admin, org.org_id, 1)
        [event] = (await Events.over_bus(bus, org).query()).events
        assert (event.protocol, event.transport_protocol, event.metadata["protocol"]) == ("x402", "x402", "x402")

    async def test_a_bare_request_over_a_protocol_gets_the_answer_the_client_gets(
        self, bus: BusClient, admin: asyncpg.Connection, org: AuthContext
    ) -> None:
        """No metadata.protocol, over x402: the log itself files it as an x402 event, as for the SDK's publish."""
        item = {"type": "payment_event", "metadata": {"amount": 5}}
        raw = await bus.request(APPEND, item, org, protocol=Protocol.X402)
        sdk = await Events.over_bus(bus, org, protocol=Protocol.X402).publish("payment_event", metadata={"amount": 5})
        assert raw.subject == sdk.subject and raw.subject.startswith("one.events.x402.")
        await wait_for_events(admin, org.org_id, 2)
        stored = {e.id: e for e in (await Events.over_bus(bus, org).query()).events}
        for appended in (raw, sdk):
            event = stored[appended.id]
            assert (event.protocol, event.transport_protocol) == ("x402", "x402")
            assert event.metadata == {"amount": 5, "protocol": "x402"}

    async def test_a_protocol_the_event_names_is_kept_over_the_one_it_travelled(
        self, bus: BusClient, admin: asyncpg.Connection, org: AuthContext
    ) -> None:
        over_a2a = Events.over_bus(bus, org, protocol=Protocol.A2A)
        appended = await over_a2a.publish("payment_event", metadata={"protocol": "acp"})
        await wait_for_events(admin, org.org_id, 1)
        [event] = (await Events.over_bus(bus, org).query()).events
        assert (event.id, event.protocol, event.transport_protocol) == (appended.id, "acp", "a2a")

    async def test_auth_context_comes_from_the_envelope_never_the_payload(
        self, bus: BusClient, org: AuthContext, other_org: AuthContext
    ) -> None:
        with pytest.raises(InvalidRequest):
            await bus.request(APPEND, {"type": "user_login", "org_id": str(other_org.org_id)}, org)

    async def test_one_invalid_item_refuses_the_whole_batch(
        self, events: Events, admin: asyncpg.Connection, org: AuthContext
    ) -> None:
        with pytest.raises(InvalidRequest):
            await events.publish_many([{"type": "user_login"}, {"type": "no_such_event"}])
        await events.publish("user_logout")
        await wait_for_events(admin, org.org_id, 1)
        assert [e.type for e in (await events.query()).events] == ["user_logout"]


@pytest.fixture
async def history(events: Events, admin: asyncpg.Connection, org: AuthContext) -> dict[str, UUID]:
    """Eight events about two things, by two actors, over three protocols, across three days."""
    course, lesson, other_actor = uuid7(), uuid7(), uuid7()
    now = datetime.now(UTC)
    items = [
        {"type": "course_created", "target_id": course, "occurred_at": now - timedelta(days=2)},
        {"type": "content_viewed", "target_id": lesson, "occurred_at": now - timedelta(days=1)},
        {"type": "payment_processed", "target_id": course, "metadata": {"protocol": "x402", "amount": 3}},
        {"type": "payment_requested", "target_id": course, "metadata": {"protocol": "acp", "amount": 4}},
        {"type": "message_sent", "target_id": lesson, "metadata": {"protocol": "a2a", "messageType": "x"}},
        {"type": "lesson_completed", "target_id": lesson},
        {"type": "course_enrolled", "target_id": course},
        {"type": "user_login"},
    ]
    await events.publish_many([{**i, "occurred_at": (i.get("occurred_at") or now).isoformat()} for i in items])
    await wait_for_events(admin, org.org_id, len(items))
    other = Events.over_bus(events.transport.bus, owner_of(org.org_id, other_actor))
    await other.publish("content_liked", target_id=course)
    await wait_for_events(admin, org.org_id, len(items) + 1)
    return {"course": course, "lesson": lesson, "other_actor": other_actor}


class TestQuery:
    async def test_filters_combine(self, events: Events, history: dict[str, UUID]) -> None:
        course = history["course"]
        by_type = await events.query(types=["payment_event"])
        assert len(by_type.events) == 2
        by_variant = await events.query(types=["payment_processed"])
        assert [e.metadata["protocol"] for e in by_variant.events] == ["x402"]
        by_protocol = await events.query(protocols=["acp", "a2a"])
        assert {e.type for e in by_protocol.events} == {"payment_event", "communication_event"}
        on_course_by_other = await events.query(target_id=course, actor_id=history["other_actor"])
        assert [e.metadata.get("action") for e in on_course_by_other.events] == ["liked"]
        recent = await events.query(target_id=course, since=datetime.now(UTC) - timedelta(hours=12))
        assert {e.type for e in recent.events} == {"payment_event", "course_enrolled", "content_event"}
        old = await events.query(until=datetime.now(UTC) - timedelta(hours=12))
        assert [e.type for e in old.events] == ["course_created", "content_event"]
        contains = await events.query(metadata={"amount": 4})
        assert [e.metadata["status"] for e in contains.events] == ["requested"]

    async def test_thing_history_is_newest_first(self, events: Events, history: dict[str, UUID]) -> None:
        page = await events.history(history["course"])
        positions = [e.position for e in page.events]
        assert positions == sorted(positions, reverse=True) and len(positions) == 5
        assert page.events[0].metadata.get("action") == "liked"
        as_actor = await events.history(history["other_actor"])
        assert len(as_actor.events) == 1

    async def test_cursor_pages_through_everything_once(self, events: Events, history: dict[str, UUID]) -> None:
        seen, after = [], None
        while True:
            page = await events.query(after=after, limit=3)
            seen += [e.position for e in page.events]
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert len(seen) == 9 and seen == sorted(set(seen))
        newest = await events.query(order="desc", limit=4)
        older = await events.query(order="desc", before=newest.next_cursor, limit=10)
        assert [e.position for e in newest.events + older.events] == sorted(seen, reverse=True)

    async def test_unknown_type_filter_is_a_typed_error(self, events: Events) -> None:
        with pytest.raises(InvalidRequest):
            await events.query(types=["no_such_event"])


class TestIsolation:
    async def test_no_query_shows_another_orgs_events(
        self, events: Events, other_events: Events, history: dict[str, UUID], bus: BusClient
    ) -> None:
        course = history["course"]
        since, until = datetime.now(UTC) - timedelta(days=7), datetime.now(UTC) + timedelta(days=1)
        assert (await other_events.query()).events == []
        assert (await other_events.query(target_id=course)).events == []
        assert (await other_events.history(course)).events == []
        assert (await other_events.tail_page(after=0, wait=0)).events == []
        assert (await other_events.daily_counts(since, until)).counts == []
        assert (await other_events.revenue(since, until, status=None)).totals == []
        assert (await other_events.stats()).org_events == 0
        # the same actor id in another org sees nothing either
        intruder = Events.over_bus(bus, owner_of(other_events.transport.ctx.org_id, events.transport.ctx.actor_id))
        assert (await intruder.history(events.transport.ctx.actor_id)).events == []
        assert len((await events.query()).events) == 9

    async def test_rls_hides_other_orgs_rows_from_the_app_role(
        self, app_conn: asyncpg.Connection, history: dict[str, UUID], org: AuthContext, other_org: AuthContext
    ) -> None:
        async with app_conn.transaction():
            await app_conn.execute("SELECT set_config('app.org_id', $1, true)", str(other_org.org_id))
            assert await app_conn.fetchval("SELECT count(*) FROM eventlog.events WHERE org_id = $1", org.org_id) == 0
        async with app_conn.transaction():  # no tenant set: nothing at all
            assert await app_conn.fetchval("SELECT count(*) FROM eventlog.events") == 0
