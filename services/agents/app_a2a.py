"""Subscribers of the A2A server's requests (`one.proto.a2a.*`, shared/contracts/a2a.py): payload -> service call.

`a2a.message.send` starts a run (chat opens its own transactions, so it is not transactional here);
`a2a.card` needs no auth (the card is public) and reads as the service in the named org.
"""

from services.agents import service_a2a as a2a
from shared.contracts.a2a import (
    A2A_CANCEL,
    A2A_CARD,
    A2A_GET,
    A2A_LIST,
    A2A_PUSH_DELETE,
    A2A_PUSH_GET,
    A2A_PUSH_LIST,
    A2A_PUSH_SET,
    A2A_SEND,
    A2A_STEPS,
    A2aAgentFacts,
    A2aCardQuery,
    A2aDeleted,
    A2aPushConfigs,
    A2aPushQuery,
    A2aPushRecord,
    A2aPushSet,
    A2aPushTarget,
    A2aSend,
    A2aStepsQuery,
    A2aTask,
    A2aTaskPage,
    A2aTaskQuery,
    A2aTaskTarget,
)
from shared.contracts.agents import RunSteps
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

a2a_router = ServiceRouter("agents")


@a2a_router.handler(A2A_SEND, transactional=False)
async def send(ctx: WorkContext, payload: A2aSend) -> A2aTask:
    return await a2a.send(ctx, payload)


@a2a_router.handler(A2A_GET)
async def get_task(ctx: WorkContext, payload: A2aTaskTarget) -> A2aTask:
    return await a2a.get(ctx, payload)


@a2a_router.handler(A2A_LIST)
async def list_tasks(ctx: WorkContext, payload: A2aTaskQuery) -> A2aTaskPage:
    return await a2a.list_tasks(ctx, payload)


@a2a_router.handler(A2A_STEPS)
async def task_steps(ctx: WorkContext, payload: A2aStepsQuery) -> RunSteps:
    return await a2a.steps(ctx, payload)


@a2a_router.handler(A2A_CANCEL, transactional=False)
async def cancel_task(ctx: WorkContext, payload: A2aTaskTarget) -> A2aTask:
    return await a2a.cancel(ctx, payload)


@a2a_router.handler(A2A_PUSH_SET)
async def set_push(ctx: WorkContext, payload: A2aPushSet) -> A2aPushRecord:
    return await a2a.set_push(ctx, payload)


@a2a_router.handler(A2A_PUSH_GET)
async def get_push(ctx: WorkContext, payload: A2aPushTarget) -> A2aPushRecord:
    return await a2a.get_push(ctx, payload)


@a2a_router.handler(A2A_PUSH_LIST)
async def list_push(ctx: WorkContext, payload: A2aPushQuery) -> A2aPushConfigs:
    return await a2a.list_push(ctx, payload)


@a2a_router.handler(A2A_PUSH_DELETE)
async def delete_push(ctx: WorkContext, payload: A2aPushTarget) -> A2aDeleted:
    return A2aDeleted(deleted=await a2a.delete_push(ctx, payload))


@a2a_router.handler(A2A_CARD, transactional=False)
async def card(ctx: WorkContext, payload: A2aCardQuery) -> A2aAgentFacts:
    return await a2a.card(ctx, payload)
