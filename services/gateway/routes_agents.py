"""The agents service's REST routes: agents and their configs, prompts, conversations, runs, executions, chat.

Each route is one bus request on the contract's own models (`shared.contracts.agents`), less what
the path names: an agent by its slug, everything else by its id. Another org's slug or id is not
found, as an unknown one is. `POST /v1/agents/{slug}/chat` is seed 001's endpoint (`message`,
`threadId`, `externalThreadId`): it answers JSON once the run finished, or, asked for
`text/event-stream` (or `stream: true`), streams the run as AG-UI events (`routes_agui`).
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from pydantic import AliasChoices, Field

from services.gateway.auth import Caller
from services.gateway.routes_agui import AGUI_DOC, chat_stream
from services.gateway.routes_graph import READ, WRITE, Bus, _set
from services.gateway.shapes import derived
from shared.contracts.agents import (
    AGENT_ARCHIVE,
    AGENT_CONFIGURE,
    AGENT_CREATE,
    AGENT_DEPLOY,
    AGENT_GET,
    AGENT_LIST,
    AGENT_UPDATE,
    AGENT_VERSIONS,
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
    PROMPT_ARCHIVE,
    PROMPT_ATTACH,
    PROMPT_CREATE,
    PROMPT_DETACH,
    PROMPT_GET,
    PROMPT_LIST,
    PROMPT_RENDER,
    PROMPT_UPDATE,
    RUN_GET,
    RUN_LIST,
    RUN_STEPS,
    Agent,
    AgentConfigs,
    AgentConfigure,
    AgentCreate,
    AgentPage,
    AgentQuery,
    AgentUpdate,
    ChatReply,
    ChatRequest,
    ConfigVersionsQuery,
    Conversation,
    ConversationCreate,
    ConversationPage,
    ConversationQuery,
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
    Prompt,
    PromptAttach,
    PromptCreate,
    PromptPage,
    PromptQuery,
    PromptRender,
    PromptUpdate,
    RenderedPrompt,
    Run,
    RunPage,
    RunQuery,
    RunSteps,
    RunStepsQuery,
)

RUN_TIMEOUT = 600.0
"""How long a chat answered as JSON may wait for its run: up to ten completions of a model on a busy CPU."""

AgentPatch = derived(AgentUpdate, "AgentPatch", drop=("slug", "id"))
AgentConfigBody = derived(AgentConfigure, "AgentConfigBody", drop=("slug", "id"))
VersionsParams = derived(ConfigVersionsQuery, "VersionsParams", drop=("slug", "id"))
PromptAttachBody = derived(PromptAttach, "PromptAttachBody", drop=("slug", "id"))
PromptPatch = derived(PromptUpdate, "PromptPatch", drop=("id",))
PromptVariables = derived(PromptRender, "PromptVariables", drop=("id",))
ConversationPatch = derived(ConversationUpdate, "ConversationPatch", drop=("id",))
ParticipantBody = derived(ParticipantChange, "ParticipantBody", drop=("conversation_id",))
ParticipantParams = derived(ParticipantChange, "ParticipantParams", drop=("conversation_id",))
MessageBody = derived(MessageAdd, "MessageBody", drop=("conversation_id",))
MessageParams = derived(MessageQuery, "MessageParams", drop=("conversation_id",))
HistoryBody = derived(HistorySearch, "HistoryBody", drop=("conversation_id",))
RunStepsParams = derived(RunStepsQuery, "RunStepsParams", drop=("run_id",))
ChatBody = derived(
    ChatRequest, "ChatBody", drop=("slug", "id", "wait"),
    thread_id=(UUID | None, Field(None, validation_alias=AliasChoices("threadId", "thread_id"),
                                  description="A conversation of the org (`threadId`); unset = a new one.")),
    external_thread_id=(ChatRequest.model_fields["external_thread_id"].annotation, Field(
        None, validation_alias=AliasChoices("externalThreadId", "external_thread_id"),
        description="The integration's thread (`externalThreadId`): reused when it exists, else created.")),
    stream=(bool, Field(False, description="Stream the run as AG-UI events (as `Accept: text/event-stream` does).")),
)


class ChatAnswer(ChatReply):
    """The finished run, and seed 001's answer fields beside it: the reply, the run, the thread, the model."""

    reply: str | None = Field(description="The agent's answer; null when the run failed (see `run.error`).")
    run_id: UUID
    thread_id: UUID
    model: str = Field(description="The model that answered, `<provider>:<model>`.")


router = APIRouter(prefix="/v1")

# agents, by slug


@router.post("/agents", status_code=201, responses=WRITE, tags=["agents"])
async def create_agent(body: AgentCreate, caller: Caller, bus: Bus) -> Agent:
    return await bus.request(AGENT_CREATE, body, caller)


@router.get("/agents", responses=READ, tags=["agents"])
async def list_agents(query: Annotated[AgentQuery, Query()], caller: Caller, bus: Bus) -> AgentPage:
    return await bus.request(AGENT_LIST, query, caller)


@router.get("/agents/{slug}", responses=READ, tags=["agents"])
async def get_agent(slug: str, caller: Caller, bus: Bus) -> Agent:
    return await bus.request(AGENT_GET, {"slug": slug}, caller)


@router.patch("/agents/{slug}", responses=WRITE, tags=["agents"])
async def update_agent(slug: str, body: AgentPatch, caller: Caller, bus: Bus) -> Agent:  # type: ignore[valid-type]
    return await bus.request(AGENT_UPDATE, {"slug": slug, **_set(body)}, caller)


@router.put("/agents/{slug}/config", responses=WRITE, tags=["agents"])
async def configure_agent(slug: str, body: AgentConfigBody, caller: Caller, bus: Bus) -> Agent:  # type: ignore[valid-type]
    """Replace the development config (a new version); `expected_version` refuses a concurrent change (409)."""
    return await bus.request(AGENT_CONFIGURE, {"slug": slug, **_set(body)}, caller)


@router.get("/agents/{slug}/versions", responses=READ, tags=["agents"])
async def agent_versions(slug: str, query: Annotated[VersionsParams, Query()], caller: Caller,  # type: ignore[valid-type]
                         bus: Bus) -> AgentConfigs:
    return await bus.request(AGENT_VERSIONS, {"slug": slug, **_set(query)}, caller)


@router.post("/agents/{slug}/deploy", responses=WRITE, tags=["agents"])
async def deploy_agent(slug: str, caller: Caller, bus: Bus) -> Agent:
    """Promote the current development config to production."""
    return await bus.request(AGENT_DEPLOY, {"slug": slug}, caller)


@router.post("/agents/{slug}/archive", responses=WRITE, tags=["agents"])
async def archive_agent(slug: str, caller: Caller, bus: Bus) -> Agent:
    return await bus.request(AGENT_ARCHIVE, {"slug": slug}, caller)


@router.post("/agents/{slug}/prompts", responses=WRITE, tags=["agents"])
async def attach_prompt(slug: str, body: PromptAttachBody, caller: Caller, bus: Bus) -> Agent:  # type: ignore[valid-type]
    return await bus.request(PROMPT_ATTACH, {"slug": slug, **_set(body)}, caller)


@router.delete("/agents/{slug}/prompts/{prompt_id}", responses=WRITE, tags=["agents"])
async def detach_prompt(slug: str, prompt_id: UUID, caller: Caller, bus: Bus) -> Agent:
    return await bus.request(PROMPT_DETACH, {"slug": slug, "prompt_id": prompt_id}, caller)


@router.post("/agents/{slug}/chat", responses={200: AGUI_DOC, **WRITE}, tags=["agents"])
async def chat(
    request: Request, slug: str, body: ChatBody, caller: Caller, bus: Bus,  # type: ignore[valid-type]
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ChatAnswer:
    """Send a message to the agent and run it: the finished run as JSON, or the run as AG-UI events while it runs."""
    payload = {"slug": slug, **_set(body)}
    streamed = payload.pop("stream", False) or "text/event-stream" in (accept or "")
    if streamed:
        return await chat_stream(request, bus, caller, payload)  # type: ignore[return-value]
    reply: ChatReply = await bus.request(CHAT, payload, caller, timeout=RUN_TIMEOUT)
    run = reply.run
    return ChatAnswer(**reply.model_dump(), reply=run.answer, run_id=run.id, thread_id=reply.conversation_id,
                      model=run.model)


# prompts


@router.post("/prompts", status_code=201, responses=WRITE, tags=["prompts"])
async def create_prompt(body: PromptCreate, caller: Caller, bus: Bus) -> Prompt:
    return await bus.request(PROMPT_CREATE, body, caller)


@router.get("/prompts", responses=READ, tags=["prompts"])
async def list_prompts(query: Annotated[PromptQuery, Query()], caller: Caller, bus: Bus) -> PromptPage:
    return await bus.request(PROMPT_LIST, query, caller)


@router.get("/prompts/{id}", responses=READ, tags=["prompts"])
async def get_prompt(id: UUID, caller: Caller, bus: Bus) -> Prompt:
    return await bus.request(PROMPT_GET, {"id": id}, caller)


@router.patch("/prompts/{id}", responses=WRITE, tags=["prompts"])
async def update_prompt(id: UUID, body: PromptPatch, caller: Caller, bus: Bus) -> Prompt:  # type: ignore[valid-type]
    return await bus.request(PROMPT_UPDATE, {"id": id, **_set(body)}, caller)


@router.post("/prompts/{id}/archive", responses=WRITE, tags=["prompts"])
async def archive_prompt(id: UUID, caller: Caller, bus: Bus) -> Prompt:
    return await bus.request(PROMPT_ARCHIVE, {"id": id}, caller)


@router.post("/prompts/{id}/render", responses=READ, tags=["prompts"])
async def render_prompt(id: UUID, body: PromptVariables, caller: Caller, bus: Bus) -> RenderedPrompt:  # type: ignore[valid-type]
    """The template with the variables given (a read with a body: nothing changes)."""
    return await bus.request(PROMPT_RENDER, {"id": id, **_set(body)}, caller)


# conversations


@router.post("/conversations", status_code=201, responses=WRITE, tags=["conversations"])
async def create_conversation(body: ConversationCreate, caller: Caller, bus: Bus) -> Conversation:
    return await bus.request(CONVERSATION_CREATE, body, caller)


@router.get("/conversations", responses=READ, tags=["conversations"])
async def list_conversations(query: Annotated[ConversationQuery, Query()], caller: Caller,
                             bus: Bus) -> ConversationPage:
    return await bus.request(CONVERSATION_LIST, query, caller)


@router.get("/conversations/external/{external_thread_id}", responses=READ, tags=["conversations"])
async def conversation_by_external_id(external_thread_id: str, caller: Caller, bus: Bus) -> Conversation:
    """The conversation an integration knows by its own thread id (seed 001 `externalThreadId`)."""
    return await bus.request(CONVERSATION_BY_EXTERNAL_ID, {"external_thread_id": external_thread_id}, caller)


@router.get("/conversations/{id}", responses=READ, tags=["conversations"])
async def get_conversation(id: UUID, caller: Caller, bus: Bus) -> Conversation:
    return await bus.request(CONVERSATION_GET, {"id": id}, caller)


@router.patch("/conversations/{id}", responses=WRITE, tags=["conversations"])
async def update_conversation(id: UUID, body: ConversationPatch, caller: Caller,  # type: ignore[valid-type]
                              bus: Bus) -> Conversation:
    return await bus.request(CONVERSATION_UPDATE, {"id": id, **_set(body)}, caller)


@router.post("/conversations/{id}/participants", status_code=201, responses=WRITE, tags=["conversations"])
async def add_participant(id: UUID, body: ParticipantBody, caller: Caller, bus: Bus) -> Participant:  # type: ignore[valid-type]
    return await bus.request(PARTICIPANT_ADD, {"conversation_id": id, **_set(body)}, caller)


@router.delete("/conversations/{id}/participants", responses=WRITE, tags=["conversations"])
async def remove_participant(id: UUID, query: Annotated[ParticipantParams, Query()], caller: Caller,  # type: ignore[valid-type]
                             bus: Bus) -> Participant:
    return await bus.request(PARTICIPANT_REMOVE, {"conversation_id": id, **_set(query)}, caller)


@router.get("/conversations/{id}/messages", responses=READ, tags=["conversations"])
async def list_messages(id: UUID, query: Annotated[MessageParams, Query()], caller: Caller,  # type: ignore[valid-type]
                        bus: Bus) -> MessagePage:
    return await bus.request(MESSAGE_LIST, {"conversation_id": id, **_set(query)}, caller)


@router.post("/conversations/{id}/messages", status_code=201, responses=WRITE, tags=["conversations"])
async def add_message(id: UUID, body: MessageBody, caller: Caller, bus: Bus) -> Message:  # type: ignore[valid-type]
    """Write a message into the conversation; it starts no run (`POST /v1/agents/{slug}/chat` does)."""
    return await bus.request(MESSAGE_ADD, {"conversation_id": id, **_set(body)}, caller)


@router.post("/conversations/{id}/search", responses=READ, tags=["conversations"])
async def search_history(id: UUID, body: HistoryBody, caller: Caller, bus: Bus) -> HistoryHits:  # type: ignore[valid-type]
    """The conversation's messages by meaning (a read with a body)."""
    return await bus.request(HISTORY_SEARCH, {"conversation_id": id, **_set(body)}, caller)


# runs and what they cost


@router.get("/runs", responses=READ, tags=["runs"])
async def list_runs(query: Annotated[RunQuery, Query()], caller: Caller, bus: Bus) -> RunPage:
    return await bus.request(RUN_LIST, query, caller)


@router.get("/runs/{id}", responses=READ, tags=["runs"])
async def get_run(id: UUID, caller: Caller, bus: Bus) -> Run:
    return await bus.request(RUN_GET, {"id": id}, caller)


@router.get("/runs/{id}/steps", responses=READ, tags=["runs"])
async def run_steps(id: UUID, query: Annotated[RunStepsParams, Query()], caller: Caller,  # type: ignore[valid-type]
                    bus: Bus) -> RunSteps:
    """The run's stored steps after `after_seq`, in order (the AG-UI stream is `GET /v1/runs/{id}/events`)."""
    return await bus.request(RUN_STEPS, {"run_id": id, **_set(query)}, caller)


@router.get("/executions", responses=READ, tags=["runs"])
async def list_executions(query: Annotated[ExecutionQuery, Query()], caller: Caller, bus: Bus) -> ExecutionPage:
    return await bus.request(EXECUTION_LIST, query, caller)


@router.get("/executions/stats", responses=READ, tags=["runs"])
async def execution_stats(query: Annotated[ExecutionStatsQuery, Query()], caller: Caller,
                          bus: Bus) -> ExecutionStats:
    return await bus.request(EXECUTION_STATS, query, caller)
