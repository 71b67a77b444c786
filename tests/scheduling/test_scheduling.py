"""Meetings and reminders over the bus: reminders fire on time through `one.notify.*`, move and stop with
their meeting, and stay in their org (issue #24)."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shared.contracts.graph import CONNECTION_QUERY, THING_CREATE_BATCH, THING_GET
from shared.contracts.jobs import JOB_GET
from shared.contracts.scheduling import (
    MEETING_CANCEL,
    MEETING_GET,
    MEETING_RESCHEDULE,
    MEETING_SCHEDULE,
    REMINDER_CANCEL,
    REMINDER_CREATE,
    REMINDER_LIST,
    Notice,
)
from shared.kernel.errors import Conflict, InvalidRequest, NotFound
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.agents.jobs_helpers import job_events
from tests.scheduling.conftest import Inbox
from tests.tenancy.conftest import Account

LEAD = 3.0
"""Seconds ahead a reminder is set, so the request and its commit are done well before it is due."""
MEETING_LEAD = 10.0
"""The same for a meeting, whose scheduling makes a thing and a link per participant in the graph first."""


async def _people(bus: BusClient, owner: Account, count: int) -> list[Any]:
    batch = [{"type": "audience_member", "name": f"p{i}"} for i in range(count)]
    return (await bus.request(THING_CREATE_BATCH, {"things": batch}, owner.ctx)).things


def _fired_on_time(notice: Notice, due: datetime, arrived: float) -> None:
    """Fired (the worker took it and marked it sent) within a second of its time, never before it. Arrival on
    the subject is reported, not asserted: on a loaded machine the test's own event loop may read it late."""
    late = (notice.sent_at - due).total_seconds()
    assert 0 <= late < 1.0, f"fired {late:.3f} s after its time (arrived {arrived - due.timestamp():.3f} s after)"


def _before(due: datetime) -> None:
    """The request that set the reminder answered before it was due: else lateness would measure the request."""
    assert datetime.now(UTC) < due, f"the request took longer than its lead: {datetime.now(UTC) - due} past due"


def _soon(seconds: float = LEAD) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_a_reminder_fires_within_a_second_of_its_time_and_is_delivered(
    bus: BusClient, owner: Account, inbox: Inbox, services: dict[str, ServiceRuntime]
) -> None:
    due = _soon()
    made = await bus.request(REMINDER_CREATE, {"remind_at": due.isoformat(), "message": "stand up"}, owner.ctx)
    _before(due)
    assert made.status == "scheduled" and made.recipient_id == owner.person_id
    ((notice, arrived),) = await inbox.wait_for({made.id}, timeout=MEETING_LEAD + 30)
    assert (notice.message, notice.recipient_id, notice.org_id) == ("stand up", owner.person_id, owner.org_id)
    _fired_on_time(notice, due, arrived)
    (sent,) = (await bus.request(REMINDER_LIST, {"status": "sent"}, owner.ctx)).reminders
    assert sent.id == made.id and sent.sent_at is not None
    job = await bus.request(JOB_GET, {"id": str(made.job_id)}, owner.ctx)
    assert job.state in ("running", "completed")
    delivered = [e for e in await job_events(services["agents"], owner.org_id, "notification_event")
                 if e["payload"]["metadata"].get("reminderId") == str(made.id)]
    assert [e["payload"]["metadata"]["deliveryStatus"] for e in delivered] == ["scheduled", "delivered"]


async def test_a_meeting_links_its_participants_and_reminds_each(
    bus: BusClient, owner: Account, inbox: Inbox
) -> None:
    a, b = await _people(bus, owner, 2)
    start = _soon(MEETING_LEAD + 600)
    meeting = await bus.request(MEETING_SCHEDULE, {
        "title": "Planning", "start_time": start.isoformat(), "end_time": (start + timedelta(hours=1)).isoformat(),
        "participant_ids": [str(a.id), str(b.id)], "remind_before": [600]}, owner.ctx)
    assert meeting.status == "scheduled" and {r.recipient_id for r in meeting.reminders} == {a.id, b.id}
    _before(start - timedelta(seconds=600))
    thing = (await bus.request(THING_GET, {"id": str(meeting.id)}, owner.ctx)).thing
    assert (thing.type, thing.properties["conversationType"]) == ("conversation", "meeting")
    links = await bus.request(CONNECTION_QUERY, {"thing_id": str(meeting.id), "direction": "in",
                                                 "types": ["participated_in"]}, owner.ctx)
    assert {c.from_id for c in links.connections} == {a.id, b.id}
    due = start.timestamp() - 600
    arrived = await inbox.wait_for({r.id for r in meeting.reminders}, timeout=MEETING_LEAD + 30)
    assert {n.recipient_id for n, _ in arrived} == {a.id, b.id}
    for notice, at in arrived:
        _fired_on_time(notice, datetime.fromtimestamp(due, UTC), at)


async def test_rescheduling_moves_the_reminders_and_cancelling_stops_them(
    bus: BusClient, owner: Account, inbox: Inbox
) -> None:
    (a,) = await _people(bus, owner, 1)
    far = datetime.now(UTC) + timedelta(hours=2)

    async def plan(title: str) -> Any:
        return await bus.request(MEETING_SCHEDULE, {
            "title": title, "start_time": far.isoformat(), "end_time": (far + timedelta(hours=1)).isoformat(),
            "participant_ids": [str(a.id)], "remind_before": [60]}, owner.ctx)

    moved, dropped = await plan("moved"), await plan("dropped")
    start = _soon(MEETING_LEAD + 60)
    after = await bus.request(MEETING_RESCHEDULE, {"id": str(moved.id), "start_time": start.isoformat(),
                                                   "end_time": (start + timedelta(minutes=30)).isoformat()}, owner.ctx)
    (reminder,) = after.reminders
    assert reminder.remind_at == start - timedelta(seconds=60)
    _before(reminder.remind_at)
    cancelled = await bus.request(MEETING_CANCEL, {"id": str(dropped.id)}, owner.ctx)
    assert cancelled.status == "cancelled" and [r.status for r in cancelled.reminders] == ["cancelled"]
    assert (await bus.request(JOB_GET, {"id": str(cancelled.reminders[0].job_id)}, owner.ctx)).state == "cancelled"
    ((notice, arrived),) = await inbox.wait_for({reminder.id}, timeout=MEETING_LEAD + 30)
    _fired_on_time(notice, reminder.remind_at, arrived)
    with pytest.raises(Conflict):
        await bus.request(MEETING_RESCHEDULE, {"id": str(dropped.id), "start_time": start.isoformat(),
                                               "end_time": (start + timedelta(minutes=30)).isoformat()}, owner.ctx)
    assert (await bus.request(MEETING_GET, {"id": str(dropped.id)}, owner.ctx)).status == "cancelled"


async def test_a_cancelled_reminder_never_fires(bus: BusClient, owner: Account, inbox: Inbox) -> None:
    made = await bus.request(REMINDER_CREATE, {"remind_at": _soon(1.5).isoformat(), "message": "x"}, owner.ctx)
    assert (await bus.request(REMINDER_CANCEL, {"id": str(made.id)}, owner.ctx)).status == "cancelled"
    await asyncio.sleep(3.0)
    assert inbox.for_reminders({made.id}) == []


async def test_bad_times_are_refused(bus: BusClient, owner: Account) -> None:
    start = _soon(3600)
    with pytest.raises(InvalidRequest):
        await bus.request(MEETING_SCHEDULE, {"title": "t", "start_time": start.isoformat(),
                                             "end_time": start.isoformat()}, owner.ctx)
    with pytest.raises(InvalidRequest):  # a time without a zone is ambiguous
        await bus.request(REMINDER_CREATE, {"remind_at": "2030-01-01T10:00:00", "message": "x"}, owner.ctx)


async def test_another_orgs_meetings_reminders_and_people_are_not_found(
    bus: BusClient, owner: Account, stranger: Account, admin: asyncpg.Connection
) -> None:
    (a,) = await _people(bus, owner, 1)
    start = _soon(3600)
    times = {"start_time": start.isoformat(), "end_time": (start + timedelta(hours=1)).isoformat()}
    meeting = await bus.request(MEETING_SCHEDULE, {"title": "ours", **times, "participant_ids": [str(a.id)],
                                                   "remind_before": [60]}, owner.ctx)
    with pytest.raises(NotFound):
        await bus.request(MEETING_GET, {"id": str(meeting.id)}, stranger.ctx)
    with pytest.raises(NotFound):
        await bus.request(MEETING_CANCEL, {"id": str(meeting.id)}, stranger.ctx)
    with pytest.raises(NotFound):
        await bus.request(REMINDER_CANCEL, {"id": str(meeting.reminders[0].id)}, stranger.ctx)
    assert (await bus.request(REMINDER_LIST, {"meeting_id": str(meeting.id)}, stranger.ctx)).reminders == []
    with pytest.raises(NotFound):  # our person in their meeting: and their half-made meeting is not left behind
        await bus.request(MEETING_SCHEDULE, {"title": "theirs", **times, "participant_ids": [str(a.id)]}, stranger.ctx)
    live = await admin.fetchval("SELECT count(*) FROM graph.things WHERE org_id = $1 AND type = 'conversation'"
                                " AND deleted_at IS NULL", stranger.org_id)
    assert live == 0
