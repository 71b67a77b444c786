"""Scheduling REST routes (served by the agents service): meetings and reminders, one bus request each.

Bodies and query strings are `shared.contracts.scheduling`'s models; the org is the verified key's, and another
org's meeting or reminder is not found.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus, _set
from services.gateway.shapes import derived
from shared.contracts.scheduling import (
    MEETING_CANCEL,
    MEETING_GET,
    MEETING_RESCHEDULE,
    MEETING_SCHEDULE,
    REMINDER_CANCEL,
    REMINDER_CREATE,
    REMINDER_LIST,
    Meeting,
    MeetingReschedule,
    MeetingSchedule,
    Reminder,
    ReminderCreate,
    ReminderQuery,
    Reminders,
)

RescheduleBody = derived(MeetingReschedule, "RescheduleBody", drop=("id",))

router = APIRouter(prefix="/v1", tags=["scheduling"])


@router.post("/meetings", status_code=201, responses=WRITE)
async def schedule_meeting(body: MeetingSchedule, caller: Caller, bus: Bus) -> Meeting:
    return await bus.request(MEETING_SCHEDULE, body, caller)


@router.get("/meetings/{id}", responses=READ)
async def get_meeting(id: UUID, caller: Caller, bus: Bus) -> Meeting:
    return await bus.request(MEETING_GET, {"id": id}, caller)


@router.post("/meetings/{id}/reschedule", responses=WRITE)
async def reschedule_meeting(id: UUID, body: RescheduleBody, caller: Caller, bus: Bus) -> Meeting:  # type: ignore[valid-type]
    return await bus.request(MEETING_RESCHEDULE, {"id": id, **_set(body)}, caller)


@router.post("/meetings/{id}/cancel", responses=WRITE)
async def cancel_meeting(id: UUID, caller: Caller, bus: Bus) -> Meeting:
    return await bus.request(MEETING_CANCEL, {"id": id}, caller)


@router.post("/reminders", status_code=201, responses=WRITE)
async def create_reminder(body: ReminderCreate, caller: Caller, bus: Bus) -> Reminder:
    return await bus.request(REMINDER_CREATE, body, caller)


@router.get("/reminders", responses=READ)
async def list_reminders(query: Annotated[ReminderQuery, Query()], caller: Caller, bus: Bus) -> Reminders:
    return await bus.request(REMINDER_LIST, query, caller)


@router.post("/reminders/{id}/cancel", responses=WRITE)
async def cancel_reminder(id: UUID, caller: Caller, bus: Bus) -> Reminder:
    return await bus.request(REMINDER_CANCEL, {"id": id}, caller)
