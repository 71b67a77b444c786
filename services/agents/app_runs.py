"""Subscribers for conversations, chat, runs and executions: payload -> service call -> result.

Chat and the conversation writes that call other services (the graph, the knowledge service)
open their transactions late, after those calls, so they are not transactional here.
"""

from services.agents import service_conversations as conversations, service_runs as runs
from shared.contracts.agents import (
    CHAT,
    CONVERSATION_BY_EXTERNAL_ID,
    CONVERSATION_CREATE,
    CONVERSATION_GET,
    CONVERSATION_LIST,
    CONVERSATION_UPDATE,
    EXECUTION_LIST,
    EXECUTION_STATS,
    HISTORY_SEARCH,
    MESSAGE_ADD,
    MESSAGE_LIST,
    PARTICIPANT_ADD,
    PARTICIPANT_REMOVE,
    RUN_GET,
    RUN_LIST,
    RUN_STEPS,
    ChatReply,
    ChatRequest,
    Conversation,
    ConversationByExternalId,
    ConversationCreate,
    ConversationPage,
    ConversationQuery,
    ConversationTarget,
    ConversationUpdate,
    ExecutionPage,
    ExecutionQuery,
    ExecutionStats,
    ExecutionStatsQuery,
    HistoryHits,
    HistorySearch,
    Message,
    MessageAdd,
    MessagePage,
    MessageQuery,
    Participant,
    ParticipantChange,
    Run,
    RunPage,
    RunQuery,
    RunSteps,
    RunStepsQuery,
    RunTarget,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

runs_router = ServiceRouter("agents")


@runs_router.handler(CONVERSATION_CREATE, transactional=False)
async def create_conversation(ctx: WorkContext, payload: ConversationCreate) -> Conversation:
    return await conversations.create_conversation(ctx, payload)


@runs_router.handler(CONVERSATION_GET)
async def get_conversation(ctx: WorkContext, payload: ConversationTarget) -> Conversation:
    return await conversations.get_conversation(ctx, payload.id)


@runs_router.handler(CONVERSATION_BY_EXTERNAL_ID)
async def conversation_by_external_id(ctx: WorkContext, payload: ConversationByExternalId) -> Conversation:
    return await conversations.get_conversation(ctx, external_thread_id=payload.external_thread_id)


@runs_router.handler(CONVERSATION_LIST)
async def list_conversations(ctx: WorkContext, payload: ConversationQuery) -> ConversationPage:
    return await conversations.list_conversations(ctx, payload)


@runs_router.handler(CONVERSATION_UPDATE)
async def update_conversation(ctx: WorkContext, payload: ConversationUpdate) -> Conversation:
    return await conversations.update_conversation(ctx, payload)


@runs_router.handler(PARTICIPANT_ADD)
async def add_participant(ctx: WorkContext, payload: ParticipantChange) -> Participant:
    return await conversations.add_participant(ctx, payload)


@runs_router.handler(PARTICIPANT_REMOVE)
async def remove_participant(ctx: WorkContext, payload: ParticipantChange) -> Participant:
    return await conversations.remove_participant(ctx, payload)


@runs_router.handler(MESSAGE_ADD, transactional=False)
async def add_message(ctx: WorkContext, payload: MessageAdd) -> Message:
    return await conversations.add_message(ctx, payload)


@runs_router.handler(MESSAGE_LIST)
async def list_messages(ctx: WorkContext, payload: MessageQuery) -> MessagePage:
    return await conversations.list_messages(ctx, payload)


@runs_router.handler(HISTORY_SEARCH, transactional=False)
async def search_history(ctx: WorkContext, payload: HistorySearch) -> HistoryHits:
    return await conversations.search_history(ctx, payload)


@runs_router.handler(CHAT, transactional=False)
async def chat(ctx: WorkContext, payload: ChatRequest) -> ChatReply:
    return await runs.chat(ctx, payload)


@runs_router.handler(RUN_GET)
async def get_run(ctx: WorkContext, payload: RunTarget) -> Run:
    return await runs.get_run(ctx, payload.id)


@runs_router.handler(RUN_LIST)
async def list_runs(ctx: WorkContext, payload: RunQuery) -> RunPage:
    return await runs.run_page(ctx, payload)


@runs_router.handler(RUN_STEPS)
async def run_steps(ctx: WorkContext, payload: RunStepsQuery) -> RunSteps:
    return await runs.run_steps(ctx, payload)


@runs_router.handler(EXECUTION_LIST)
async def list_executions(ctx: WorkContext, payload: ExecutionQuery) -> ExecutionPage:
    return await runs.execution_page(ctx, payload)


@runs_router.handler(EXECUTION_STATS)
async def execution_stats(ctx: WorkContext, payload: ExecutionStatsQuery) -> ExecutionStats:
    return await runs.execution_stats(ctx, payload)
