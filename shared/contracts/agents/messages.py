"""The messages the agents service answers: payload and result models, registered once.

An agent is named by its slug or its id (`AgentRef`). `agents.chat` is seed 001's
`POST /v1/agents/{slug}/chat`: it stores the message, starts a run and, unless `wait` is false,
answers with the finished run. A run's steps are published as they happen on
`step_subject(org_id, run_id)` (core NATS, `RunStep` JSON); a reader that comes late subscribes
first, then asks `agents.run.steps` for the stored ones and drops the live steps whose `seq` it
already has.
"""

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, SecretStr, StringConstraints, model_validator

from shared.contracts.agents.records import (
    Agent,
    AgentConfig,
    Attachment,
    Conversation,
    ElevateStep,
    Environment,
    Execution,
    ExecutionStats,
    IdentityMode,
    Message,
    Participant,
    Prompt,
    Run,
    RunStatus,
    RunStep,
)
from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")]
ToolName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$")]
ToolPattern = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_*?-]{1,64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=60, strip_whitespace=True)]
ModelRef = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Limit = Annotated[int, Field(ge=1, le=200)]
MessageText = Annotated[str, StringConstraints(min_length=1, max_length=32_000)]

BUILTIN_TOOLS = (
    "thing_create", "thing_get", "thing_query", "thing_update", "thing_archive", "connect", "disconnect",
    "event_emit", "event_query", "knowledge_search", "job_enqueue", "job_status", "delegate", "x402_fetch",
    "ap2_purchase", "ap2_merchant",  # ap2.py: buy with an AP2 mandate; sell over AP2 (a capability, no model tool)
    "ap2_mandates",  # the AP2 mandates granted to the agent, with what remains of each
    "ask_user",  # the run waits for its caller's answer (A2A input-required)
)
"""The built-in tools an agent's config may name; each is one bus request made with the run's auth context."""


def step_subject(org_id: UUID | str, run_id: UUID | str) -> str:
    """Where a run's steps are published as they happen: `one.agents.steps.<org_id>.<run_id>`."""
    return f"{subjects.PREFIX}.agents.steps.{org_id}.{run_id}"


class ToolPermission(Payload):
    """What an agent may do with the tools matching `tool` (a name or an fnmatch pattern such as `thing_*`).

    A tool is offered to the model only when the config names it in `tools` and a permission matches it.
    `actions` are the RBAC actions the tool may perform (`read`, `list`, `create`, `update`, `archive`,
    `delete`, `execute`; `*` = any); `denied_fields` are property / argument names the model may neither
    set nor see; `thing_types` limits the things the tool touches (empty = any).
    """

    tool: ToolPattern
    actions: list[Annotated[str, StringConstraints(pattern=r"^[a-z*]{1,20}$")]] = Field(default_factory=lambda: ["*"])
    identity: IdentityMode = IdentityMode.CALLER
    denied_fields: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(default_factory=list)
    thing_types: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,60}$")]] = Field(default_factory=list)


class HttpTool(Payload):
    """A custom tool served over HTTP: the service POSTs the model's arguments (checked against `parameters`)
    as JSON, signed with `X-One-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""

    name: ToolName
    description: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)]
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    secret: SecretStr | None = Field(None, description="Signing secret; unset on an update keeps the stored one.")
    timeout: float = Field(10.0, gt=0, le=120)


class McpServer(Payload):
    """An MCP server (Streamable HTTP) whose tools the agent may call, offered as `<name>__<tool>`."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,30}$")]
    url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2000)]
    tools: list[ToolName] = Field(default_factory=list, description="Tools to offer; empty = every tool it lists.")
    headers: dict[str, str] = Field(default_factory=dict, description="Sent with every request (e.g. a bearer token).")


class KnowledgeScope(Payload):
    """What the run's retrieval may read: items with all of `labels`, and/or from `source_thing_ids`."""

    enabled: bool = True
    labels: list[Tag] = Field(default_factory=list, max_length=20)
    source_thing_ids: list[UUID] = Field(default_factory=list, max_length=20)
    k: int = Field(4, ge=1, le=20)


class AgentConfigInput(Payload):
    system_prompt: Annotated[str, StringConstraints(max_length=32_000)] = "You are a helpful assistant."
    model: ModelRef | None = Field(None, description="`<provider>:<model>`; unset = the service's default model.")
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, le=32_000)
    max_iterations: int = Field(10, ge=1, le=10)
    tools: list[ToolName] = Field(default_factory=list, max_length=50)
    permissions: list[ToolPermission] = Field(default_factory=list, max_length=50)
    http_tools: list[HttpTool] = Field(default_factory=list, max_length=20)
    mcp_servers: list[McpServer] = Field(default_factory=list, max_length=10)
    knowledge: KnowledgeScope = Field(default_factory=KnowledgeScope)
    delegates_to: list[Slug] = Field(default_factory=list, max_length=20)


class AgentCreate(Payload):
    slug: Slug
    name: Name
    type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,60}$")] = Field(
        "ai_clone", description="`ai_clone` or a business agent type (`strategy_agent`, `sales_agent`, ...)."
    )
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    config: AgentConfigInput = Field(default_factory=AgentConfigInput)


class AgentRef(Payload):
    """An agent by slug or id (exactly one)."""

    slug: Slug | None = None
    id: UUID | None = None

    @model_validator(mode="after")
    def _one(self) -> "AgentRef":
        if (self.slug is None) == (self.id is None):
            raise ValueError("name the agent by slug or by id (one of them)")
        return self


class AgentConfigure(AgentRef):
    """Replace the development config (a new version); `expected_version` guards against a concurrent change."""

    config: AgentConfigInput
    expected_version: int | None = Field(None, ge=1)


class AgentUpdate(AgentRef):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None


class AgentQuery(Payload):
    include_archived: bool = False
    cursor: UUID | None = None
    limit: Limit = 50


class AgentPage(BaseModel):
    agents: list[Agent]
    next_cursor: UUID | None = None


class ConfigVersionsQuery(AgentRef):
    environment: Environment | None = None


class AgentConfigs(BaseModel):
    configs: list[AgentConfig]


class PromptCreate(Payload):
    name: Name
    step: ElevateStep
    template: Annotated[str, StringConstraints(min_length=1, max_length=16_000)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class PromptTarget(Payload):
    id: UUID


class PromptUpdate(Payload):
    id: UUID
    name: Name | None = None
    step: ElevateStep | None = None
    template: Annotated[str, StringConstraints(min_length=1, max_length=16_000)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    tags: list[Tag] | None = None


class PromptQuery(Payload):
    step: ElevateStep | None = None
    include_archived: bool = False
    cursor: UUID | None = None
    limit: Limit = 50


class PromptPage(BaseModel):
    prompts: list[Prompt]
    next_cursor: UUID | None = None


class PromptAttach(AgentRef):
    prompt_id: UUID


class PromptRender(Payload):
    id: UUID
    variables: dict[str, str] = Field(default_factory=dict)


class RenderedPrompt(BaseModel):
    prompt_id: UUID
    step: ElevateStep
    text: str
    missing: list[str] = Field(description="Variables the template names that were not given (left empty).")


class ConversationCreate(Payload):
    title: Name = "Conversation"
    external_thread_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    agents: list[Slug] = Field(default_factory=list, max_length=20, description="Agents taking part from the start.")


class ConversationTarget(Payload):
    id: UUID


class ConversationByExternalId(Payload):
    external_thread_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ConversationUpdate(Payload):
    id: UUID
    title: Name | None = None
    status: Literal["active", "closed", "archived"] | None = None
    tags: list[Tag] | None = None


class ConversationQuery(Payload):
    status: Literal["active", "closed", "archived"] | None = None
    cursor: UUID | None = None
    limit: Limit = 50


class ConversationPage(BaseModel):
    conversations: list[Conversation]
    next_cursor: UUID | None = None


class ParticipantChange(Payload):
    conversation_id: UUID
    kind: Literal["person", "agent"]
    member_id: UUID | None = Field(None, description="The person's id, or the agent's id.")
    agent_slug: Slug | None = None

    @model_validator(mode="after")
    def _named(self) -> "ParticipantChange":
        if self.member_id is None and (self.kind != "agent" or self.agent_slug is None):
            raise ValueError("name the participant: member_id, or agent_slug for an agent")
        return self


class MessageAdd(Payload):
    """A message written into a conversation by the caller (it does not start a run: `agents.chat` does)."""

    conversation_id: UUID
    content: MessageText
    role: Literal["user", "system"] = "user"
    step: ElevateStep | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


class MessageQuery(Payload):
    conversation_id: UUID
    after_seq: int = Field(0, ge=0)
    limit: Limit = 100


class MessagePage(BaseModel):
    messages: list[Message]
    next_seq: int | None = None


class HistorySearch(Payload):
    """Messages of a conversation by meaning (its messages are embedded through the knowledge service)."""

    conversation_id: UUID
    query: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    k: int = Field(5, ge=1, le=50)


class HistoryHit(BaseModel):
    message_id: UUID | None
    text: str | None
    score: float


class HistoryHits(BaseModel):
    hits: list[HistoryHit]


class ChatRequest(AgentRef):
    """Seed 001's chat body: the message, and the thread by our id or the integration's."""

    message: MessageText
    thread_id: UUID | None = Field(None, description="A conversation of the org; unset = a new one (or the external one).")
    external_thread_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    environment: Environment = Environment.PRODUCTION
    step: ElevateStep | None = None
    variables: dict[str, str] = Field(default_factory=dict, description="Values for the attached prompts' variables.")
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    wait: bool = Field(True, description="False: answer as soon as the run started; follow it on its step subject.")


class ChatReply(BaseModel):
    run: Run
    conversation_id: UUID
    step_subject: str


class RunTarget(Payload):
    id: UUID


class RunQuery(Payload):
    agent: Slug | None = None
    conversation_id: UUID | None = None
    status: RunStatus | None = None
    cursor: UUID | None = None
    limit: Limit = 50


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: UUID | None = None


class RunStepsQuery(Payload):
    run_id: UUID
    after_seq: int = Field(0, ge=0)
    limit: Annotated[int, Field(ge=1, le=1000)] = 500


class RunSteps(BaseModel):
    run: Run
    steps: list[RunStep]


class ExecutionQuery(Payload):
    agent: Slug | None = None
    cursor: UUID | None = None
    limit: Limit = 50


class ExecutionPage(BaseModel):
    executions: list[Execution]
    next_cursor: UUID | None = None


class ExecutionStatsQuery(Payload):
    since_days: float | None = Field(None, gt=0, le=36_500, description="Only runs of the last days (at most 100 "
                                     "years: a longer span is no date); unset = all.")


_CHAT_PROTOCOLS = (Protocol.NATIVE, Protocol.AG_UI, Protocol.A2A)


def _message(type_: str, payload: type[Payload], result: type[BaseModel], **options: Any) -> Any:
    return register_message(type_, subjects.command("agents", type_.removeprefix("agents.")), payload, result, **options)


AGENT_CREATE = _message("agents.agent.create", AgentCreate, Agent)
AGENT_GET = _message("agents.agent.get", AgentRef, Agent)
AGENT_LIST = _message("agents.agent.list", AgentQuery, AgentPage)
AGENT_UPDATE = _message("agents.agent.update", AgentUpdate, Agent)
AGENT_CONFIGURE = _message("agents.agent.configure", AgentConfigure, Agent)
AGENT_DEPLOY = _message("agents.agent.deploy", AgentRef, Agent)
AGENT_ARCHIVE = _message("agents.agent.archive", AgentRef, Agent)
AGENT_VERSIONS = _message("agents.agent.versions", ConfigVersionsQuery, AgentConfigs)
PROMPT_CREATE = _message("agents.prompt.create", PromptCreate, Prompt)
PROMPT_GET = _message("agents.prompt.get", PromptTarget, Prompt)
PROMPT_LIST = _message("agents.prompt.list", PromptQuery, PromptPage)
PROMPT_UPDATE = _message("agents.prompt.update", PromptUpdate, Prompt)
PROMPT_ARCHIVE = _message("agents.prompt.archive", PromptTarget, Prompt)
PROMPT_RENDER = _message("agents.prompt.render", PromptRender, RenderedPrompt)
PROMPT_ATTACH = _message("agents.prompt.attach", PromptAttach, Agent)
PROMPT_DETACH = _message("agents.prompt.detach", PromptAttach, Agent)
CONVERSATION_CREATE = _message("agents.conversation.create", ConversationCreate, Conversation)
CONVERSATION_GET = _message("agents.conversation.get", ConversationTarget, Conversation)
CONVERSATION_BY_EXTERNAL_ID = _message("agents.conversation.by_external_id", ConversationByExternalId, Conversation)
CONVERSATION_LIST = _message("agents.conversation.list", ConversationQuery, ConversationPage)
CONVERSATION_UPDATE = _message("agents.conversation.update", ConversationUpdate, Conversation)
PARTICIPANT_ADD = _message("agents.participant.add", ParticipantChange, Participant)
PARTICIPANT_REMOVE = _message("agents.participant.remove", ParticipantChange, Participant)
MESSAGE_ADD = _message("agents.message.add", MessageAdd, Message)
MESSAGE_LIST = _message("agents.message.list", MessageQuery, MessagePage)
HISTORY_SEARCH = _message("agents.history.search", HistorySearch, HistoryHits)
CHAT = _message("agents.chat", ChatRequest, ChatReply, protocols=_CHAT_PROTOCOLS)
RUN_GET = _message("agents.run.get", RunTarget, Run, protocols=_CHAT_PROTOCOLS)
RUN_LIST = _message("agents.run.list", RunQuery, RunPage)
RUN_STEPS = _message("agents.run.steps", RunStepsQuery, RunSteps, protocols=_CHAT_PROTOCOLS)
EXECUTION_LIST = _message("agents.execution.list", ExecutionQuery, ExecutionPage)
EXECUTION_STATS = _message("agents.execution.stats", ExecutionStatsQuery, ExecutionStats)
