"""The scheduling subscribers (meetings, reminders); joined to the service's router in app.py.

The meeting handlers call the graph before their own transaction opens (`transactional=False`); the
reminder handlers run in the router's transaction.
"""

from services.agents import service_scheduling
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
    MeetingTarget,
    Reminder,
    ReminderCreate,
    ReminderQuery,
    Reminders,
    ReminderTarget,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

scheduling_router = ServiceRouter("agents")


@scheduling_router.handler(MEETING_SCHEDULE, transactional=False)
async def schedule_meeting(ctx: WorkContext, payload: MeetingSchedule) -> Meeting:
    return await service_scheduling.schedule(ctx, payload)


@scheduling_router.handler(MEETING_GET, transactional=False)
async def get_meeting(ctx: WorkContext, payload: MeetingTarget) -> Meeting:
    return await service_scheduling.get(ctx, payload.id)


@scheduling_router.handler(MEETING_RESCHEDULE, transactional=False)
async def reschedule_meeting(ctx: WorkContext, payload: MeetingReschedule) -> Meeting:
    return await service_scheduling.reschedule(ctx, payload)


@scheduling_router.handler(MEETING_CANCEL, transactional=False)
async def cancel_meeting(ctx: WorkContext, payload: MeetingTarget) -> Meeting:
    return await service_scheduling.cancel(ctx, payload.id)


@scheduling_router.handler(REMINDER_CREATE)
async def create_reminder(ctx: WorkContext, payload: ReminderCreate) -> Reminder:
    return await service_scheduling.add_reminder(ctx, payload)


@scheduling_router.handler(REMINDER_CANCEL)
async def cancel_reminder(ctx: WorkContext, payload: ReminderTarget) -> Reminder:
    return await service_scheduling.cancel_reminder(ctx, payload.id)


@scheduling_router.handler(REMINDER_LIST)
async def list_reminders(ctx: WorkContext, payload: ReminderQuery) -> Reminders:
    return await service_scheduling.list_reminders(ctx, payload)
