"""Meetings and reminders as a caller sees them: schedule, read, reschedule and cancel a meeting; add, list and
cancel a reminder.

A meeting is a graph thing (type `conversation`, `properties.conversationType = "meeting"`: the ontology has no
meeting type, and seed 002 keeps its "events" with the conversations) with a `participated_in` connection from
each participant; the graph creates, links and logs them (entity events) over the bus, before this service's
own transaction opens (never a bus call inside it). A meeting whose links cannot all be made is deleted again,
so no half-made meeting stays. Its reminders live here (reminders.py), one per participant and offset.
No SQL here and no NATS.
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.agents import reminders, repository_scheduling as repo
from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE, THING_DELETE, THING_GET, THING_UPDATE
from shared.contracts.scheduling import (
    Meeting,
    MeetingCancelled,
    MeetingNotFound,
    MeetingReschedule,
    MeetingSchedule,
    Reminder,
    ReminderCreate,
    ReminderNotFound,
    ReminderQuery,
    Reminders,
)
from shared.kernel.errors import Conflict, InvalidRequest, NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology import ConnectionType, ThingType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

MEETING_TYPE = ThingType.CONVERSATION
PARTICIPANT = {"interactionType": "meeting", "role": "participant"}


def _millis(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _moment(millis: Any) -> datetime:
    return datetime.fromtimestamp(int(millis) / 1000, UTC)


def _check_times(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidRequest("a meeting ends after it starts",
                             {"start_time": start.isoformat(), "end_time": end.isoformat()})


async def schedule(ctx: WorkContext, request: MeetingSchedule) -> Meeting:
    require(ctx.auth, "meetings", "create")
    _check_times(request.start_time, request.end_time)
    participants = list(dict.fromkeys(request.participant_ids))
    thing = await ctx.call(THING_CREATE, {"type": MEETING_TYPE.value, "name": request.title, "status": "active",
                                          "properties": {
        "conversationType": "meeting", "title": request.title, "description": request.description,
        "startTime": _millis(request.start_time), "endTime": _millis(request.end_time), "status": "scheduled",
        "participants": [str(p) for p in participants], "createdBy": str(ctx.auth.actor_id)}})
    try:
        for participant in participants:
            await ctx.call(CONNECTION_CREATE, {"from_id": str(participant), "to_id": str(thing.id),
                                               "type": ConnectionType.PARTICIPATED_IN.value, "metadata": PARTICIPANT})
    except BaseException:
        await ctx.call(THING_DELETE, {"id": str(thing.id)})
        raise
    async with ctx.transaction() as tx:
        rows = await reminders.add(tx, [
            {"id": uuid7(), "meeting_id": thing.id, "recipient_id": participant, "related_id": None,
             "channel": "in_app", "subject": f"Reminder: {request.title}"[:200],
             "message": f"{request.title} starts at {request.start_time.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
             "remind_at": datetime.fromtimestamp(request.start_time.timestamp() - offset, UTC),
             "offset_seconds": offset}
            for offset in dict.fromkeys(request.remind_before) for participant in participants])
    return _meeting(thing.properties, thing.id, [row.to_reminder() for row in rows])


def _meeting(properties: dict[str, Any], thing_id: UUID, reminder_list: list[Reminder]) -> Meeting:
    return Meeting(id=thing_id, title=properties.get("title", ""), description=properties.get("description", ""),
                   start_time=_moment(properties["startTime"]), end_time=_moment(properties["endTime"]),
                   status=properties.get("status", "scheduled"),
                   participant_ids=[UUID(p) for p in properties.get("participants", [])], reminders=reminder_list)


async def _meeting_thing(ctx: WorkContext, meeting_id: UUID) -> Any:
    try:
        found = (await ctx.call(THING_GET, {"id": str(meeting_id)})).thing
    except NotFound:  # the graph's ThingNotFound: another org's thing is not found either
        found = None
    if found is None or found.type != MEETING_TYPE or found.properties.get("conversationType") != "meeting":
        raise MeetingNotFound(f"no meeting {meeting_id} in this organization", {"id": str(meeting_id)})
    return found


async def get(ctx: WorkContext, meeting_id: UUID) -> Meeting:
    require(ctx.auth, "meetings", "read")
    thing = await _meeting_thing(ctx, meeting_id)
    async with ctx.transaction() as tx:
        rows = await repo.of_meeting(tx.session, tx.auth.org_id, meeting_id)
    return _meeting(thing.properties, thing.id, [row.to_reminder() for row in rows])


async def reschedule(ctx: WorkContext, request: MeetingReschedule) -> Meeting:
    """New times on the thing, then its scheduled reminders move with the start."""
    require(ctx.auth, "meetings", "update")
    _check_times(request.start_time, request.end_time)
    thing = await _meeting_thing(ctx, request.id)
    if thing.properties.get("status") == "cancelled":
        raise MeetingCancelled(f"meeting {request.id} is cancelled", {"id": str(request.id)})
    updated = await ctx.call(THING_UPDATE, {"id": str(thing.id), "properties": {
        "startTime": _millis(request.start_time), "endTime": _millis(request.end_time)}})
    async with ctx.transaction() as tx:
        rows = await reminders.move(tx, await repo.of_meeting(tx.session, tx.auth.org_id, thing.id, for_update=True),
                                    request.start_time)
    return _meeting(updated.properties, thing.id, [row.to_reminder() for row in rows])


async def cancel(ctx: WorkContext, meeting_id: UUID) -> Meeting:
    """Cancelled on the thing, and its reminders that have not fired with it (cancelling twice changes nothing)."""
    require(ctx.auth, "meetings", "update")
    thing = await _meeting_thing(ctx, meeting_id)
    properties = thing.properties
    if properties.get("status") != "cancelled":
        cancelled = await ctx.call(THING_UPDATE, {"id": str(thing.id), "properties": {"status": "cancelled"}})
        properties = cancelled.properties
    async with ctx.transaction() as tx:
        rows = await reminders.cancel(tx, await repo.of_meeting(tx.session, tx.auth.org_id, thing.id, for_update=True))
    return _meeting(properties, thing.id, [row.to_reminder() for row in rows])


async def add_reminder(ctx: WorkContext, request: ReminderCreate) -> Reminder:
    """A standalone reminder, to the caller or (with `reminders:act_as`) to someone else."""
    require(ctx.auth, "reminders", "create")
    recipient = request.recipient_id or ctx.auth.actor_id
    if recipient != ctx.auth.actor_id:
        require(ctx.auth, "reminders", "act_as")
    (row,) = await reminders.add(ctx, [{
        "id": uuid7(), "meeting_id": None, "recipient_id": recipient, "related_id": request.related_id,
        "channel": request.channel, "subject": request.subject, "message": request.message,
        "remind_at": request.remind_at, "offset_seconds": None}])
    return row.to_reminder()


async def cancel_reminder(ctx: WorkContext, reminder_id: UUID) -> Reminder:
    require(ctx.auth, "reminders", "update")
    row = await repo.get(ctx.session, ctx.auth.org_id, reminder_id, for_update=True)
    if row is None:
        raise ReminderNotFound(f"no reminder {reminder_id}", {"id": str(reminder_id)})
    if row.status == "sent":
        raise Conflict(f"reminder {reminder_id} was sent already", {"id": str(reminder_id), "status": row.status})
    return (await reminders.cancel(ctx, [row]))[0].to_reminder()


async def list_reminders(ctx: WorkContext, query: ReminderQuery) -> Reminders:
    require(ctx.auth, "reminders", "list")
    rows = await repo.page(ctx.session, ctx.auth.org_id, meeting_id=query.meeting_id, status=query.status)
    return Reminders(reminders=[row.to_reminder() for row in rows])
