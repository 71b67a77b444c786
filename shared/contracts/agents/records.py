"""What the agents service's replies carry: agents and their configs, conversations, prompts, runs, steps, executions.

An agent is a thing in the graph (same id) plus configs kept here: each change to the `development`
config is a new version; `deploy` copies the current development config into a new `production`
version. Secrets of custom tools never leave the service: replies say only whether one is set.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field


class ElevateStep(StrEnum):
    """The ELEVATE framework's steps (seed 002): prompts and messages may name the step they belong to."""

    FOUNDATION = "foundation"
    HOOK = "hook"
    GIFT = "gift"
    IDENTIFY = "identify"
    ENGAGE = "engage"
    SELL = "sell"
    NURTURE = "nurture"
    UPSELL = "upsell"
    EDUCATE = "educate"
    SHARE = "share"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class IdentityMode(StrEnum):
    """Whose identity a tool's bus request carries: the person who started the run, or the agent's own
    (the agents service's identity on behalf of the agent: the agent is the actor of what it writes)."""

    CALLER = "caller"
    AGENT = "agent"


class RunStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"  # asked its caller (`ask_user`) or needs credentials: the caller's next message wakes it
    COMPLETED = "completed"
    FAILED = "failed"


class StepKind(StrEnum):
    """What a run step records; the AG-UI stream maps these to RUN_STARTED, TEXT_MESSAGE_*, TOOL_CALL_*, RUN_*."""

    RUN_STARTED = "run_started"
    RETRIEVAL = "retrieval"  # knowledge retrieved into the context, with citations
    MODEL_CALL = "model_call"  # one completion: model, tokens, latency
    TEXT_DELTA = "text_delta"  # streamed text (published, not stored: the `text` step holds the whole)
    TEXT = "text"  # an assistant message's whole text
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    RESUMED = "resumed"  # another replica took the run over after its lease expired
    RUN_FINISHED = "run_finished"
    RUN_ERROR = "run_error"


class ToolPermissionRecord(BaseModel):
    tool: str
    actions: list[str]
    identity: IdentityMode
    denied_fields: list[str]
    thing_types: list[str]


class HttpToolRecord(BaseModel):
    name: str
    description: str
    url: str
    parameters: dict[str, Any]
    timeout: float
    has_secret: bool


class McpServerRecord(BaseModel):
    name: str
    url: str
    tools: list[str]
    has_headers: bool


class KnowledgeScopeRecord(BaseModel):
    labels: list[str]
    source_thing_ids: list[UUID]
    k: int
    enabled: bool


class AgentConfig(BaseModel):
    """One version of an agent's configuration in one environment."""

    id: UUID
    agent_id: UUID
    environment: Environment
    version: int
    system_prompt: str
    model: str
    temperature: float
    max_tokens: int
    max_iterations: int
    tools: list[str]
    permissions: list[ToolPermissionRecord]
    http_tools: list[HttpToolRecord]
    mcp_servers: list[McpServerRecord]
    knowledge: KnowledgeScopeRecord
    delegates_to: list[str] = Field(description="Slugs of agents this one may delegate to; empty = any agent of the org.")
    created_at: datetime
    created_by: UUID


class Agent(BaseModel):
    id: UUID = Field(description="Also the id of the agent's thing in the graph.")
    slug: str
    name: str
    type: str = Field(description="The thing type: `ai_clone` or one of the ten business agent types.")
    description: str
    status: Literal["active", "archived"]
    development: AgentConfig
    production: AgentConfig | None = Field(None, description="None until the first deploy.")
    prompts: list[UUID] = Field(default_factory=list, description="Attached prompts, rendered into every run.")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


class Prompt(BaseModel):
    id: UUID
    name: str
    step: ElevateStep
    template: str
    variables: list[str] = Field(description="The `{{name}}` placeholders of the template.")
    description: str
    tags: list[str]
    status: Literal["active", "archived"]
    version: int
    created_at: datetime
    updated_at: datetime


class Participant(BaseModel):
    id: UUID
    conversation_id: UUID
    kind: Literal["person", "agent"]
    member_id: UUID = Field(description="The person's id, or the agent's id.")
    status: Literal["active", "removed"]
    added_at: datetime
    removed_at: datetime | None = None


class Attachment(BaseModel):
    thing_id: UUID | None = None
    url: str | None = None
    name: str | None = None


class ToolCallRecord(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]


class Message(BaseModel):
    id: UUID
    conversation_id: UUID
    seq: int
    role: Literal["system", "user", "assistant", "tool"]
    author_kind: Literal["person", "agent", "system"]
    author_id: UUID | None
    content: str | None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    tool_call_id: str | None = None
    step: ElevateStep | None = None
    tags: list[str] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    run_id: UUID | None = None
    created_at: datetime


class Conversation(BaseModel):
    id: UUID = Field(description="Also the id of the conversation's thing in the graph.")
    title: str
    status: Literal["active", "closed", "archived"]
    external_thread_id: str | None
    tags: list[str]
    participants: list[Participant] = Field(default_factory=list)
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: UUID


class Citation(BaseModel):
    """A knowledge item put in a run's context: `[n]` in the context is `index` n."""

    index: int
    item_id: UUID
    source_thing_id: UUID | None = None
    source_field: str | None = None
    chunk_index: int | None = None
    score: float
    excerpt: str = ""


class TokenUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class Run(BaseModel):
    id: UUID
    agent_id: UUID
    agent_slug: str
    conversation_id: UUID
    environment: Environment
    config_version: int
    status: RunStatus
    model: str = Field(description="The model that answered last, as its provider names it (`<provider>:<model>`).")
    iterations: int
    answer: str | None = None
    error: dict[str, Any] | None = Field(None, description="`{code, message}` of a failed run.")
    citations: list[Citation] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost: float = 0.0
    latency_ms: int | None = None
    parent_run_id: UUID | None = None
    depth: int = 0
    resumed: int = Field(0, description="How many times another replica took the run over.")
    actor_id: UUID
    created_at: datetime
    finished_at: datetime | None = None


class RunStep(BaseModel):
    """One step of a run, as stored and as published on `step_subject(org_id, run_id)`.

    `seq` orders a run's steps; a `text_delta` is published with the seq of the step it precedes and
    is never stored (the `text` step holds the whole), so a late reader loses no text, only its pacing.
    """

    run_id: UUID
    seq: int
    kind: StepKind
    iteration: int = 0
    text: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None
    result: Any = None
    is_error: bool = False
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class Execution(BaseModel):
    """What a finished run cost: tokens, latency, model, money."""

    run_id: UUID
    agent_id: UUID
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    cost: float
    status: RunStatus
    created_at: datetime


class ExecutionTotals(BaseModel):
    runs: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_ms_avg: float = 0.0


class ExecutionStats(BaseModel):
    total: ExecutionTotals
    by_model: dict[str, ExecutionTotals]
    by_agent: dict[str, ExecutionTotals]
