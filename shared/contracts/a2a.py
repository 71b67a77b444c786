"""A2A v1.0 on the bus: the gateway's A2A server asks the agents service, which keeps every task.

Every published (deployed) agent of an org is an A2A server at the gateway; the gateway speaks the
wire (a2a-sdk: JSON-RPC, HTTP+JSON, SSE, 0.3 names) and keeps no task state. Each A2A operation is
one request on `one.proto.a2a.<verb>` (envelopes tagged `a2a`) to the agents service, where a task
is a run of the agent (`agents.chat`), its `contextId` the run's conversation, its state read from
the run (`working`, `input-required` / `auth-required` while the run waits for its caller, `completed`,
`failed`) or the task's own (`canceled`; `rejected`: refused before any run). A message naming a waiting task
answers it and its run goes on (docs/a2a.md).

Tasks, messages and push configs travel as A2A's own JSON (the protobuf JSON mapping the SDK reads
and writes: camelCase keys, `TASK_STATE_*` and `ROLE_*` enum names), so nothing is translated twice.
Push notifications are delivered by the agents service's durable jobs (kind `a2a.push`): the task's
final state, POSTed as a `StreamResponse` (`{"task": ...}`), signed (see `PUSH_SIGNATURE_HEADER`).
"""

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from shared.contracts.agents import RunSteps, Slug
from shared.kernel import subjects
from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.errors import Conflict, NotFound

PUSH_TOKEN_HEADER = "X-A2A-Notification-Token"
"""The token the client set in its push config, sent back as is (what a2a-sdk's own sender does)."""
PUSH_SIGNATURE_HEADER = "X-One-Signature"
"""`t=<unix seconds>,v1=<hex HMAC-SHA256(token, "<t>.<body>")>`: the body signed with the client's token (sent only
when the client set a token), so a webhook checks the body was not changed, not only who sent it."""

AgentSlug = Slug  # the agents' own slug rule: a name that cannot be a slug is refused here, not deep in a handler
TaskId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
HistoryLength = Annotated[int, Field(ge=0, le=1000)]


class A2aTaskNotFound(NotFound):
    """No such task of this agent in the caller's org (another org's is not found either): A2A `TaskNotFoundError`."""

    code = "a2a_task_not_found"


class A2aTaskNotCancelable(Conflict):
    """The task has ended (completed, failed, canceled): A2A `TaskNotCancelableError`."""

    code = "a2a_task_not_cancelable"


class A2aTaskTerminal(Conflict):
    """A message names a task that is not waiting for a reply (it works or has ended), or a subscription asks to
    follow an ended one: A2A `UnsupportedOperationError`."""

    code = "a2a_task_terminal"


class A2aCaller(Payload):
    """Who calls from outside, as the gateway saw it: recorded as an `external_agent` thing of the org."""

    key_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    card_url: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, description="The caller's own agent card, when it says (`metadata.agentCardUrl` of its message).")
    name: Annotated[str, StringConstraints(max_length=200)] | None = None


class A2aAgentRef(Payload):
    agent: AgentSlug = Field(description="The agent's slug (its A2A URL names it).")


class A2aPushConfig(Payload):
    """A2A `TaskPushNotificationConfig` as the client sent it (`taskId` is the path's)."""

    id: Annotated[str, StringConstraints(max_length=100)] | None = None
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://")]
    token: Annotated[str, StringConstraints(max_length=500)] | None = None
    authentication: dict[str, Any] | None = Field(None, description="`{scheme, credentials}` for `Authorization`.")


class A2aSend(A2aAgentRef):
    message: dict[str, Any] = Field(description="A2A `Message` JSON: messageId, role, parts, contextId?, taskId?.")
    return_immediately: bool = False
    history_length: HistoryLength | None = None
    push: A2aPushConfig | None = None
    caller: A2aCaller = Field(default_factory=A2aCaller)


class A2aTaskTarget(A2aAgentRef):
    id: TaskId
    history_length: HistoryLength | None = None


class A2aTaskQuery(A2aAgentRef):
    context_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    state: Annotated[str, StringConstraints(pattern=r"^TASK_STATE_[A-Z_]+$")] | None = None
    page_size: int = Field(50, ge=1, le=100)
    page_token: Annotated[str, StringConstraints(max_length=100)] | None = None
    history_length: HistoryLength | None = None
    include_artifacts: bool = False


class A2aStepsQuery(A2aAgentRef):
    """The stored steps of a task's run, for the gateway's stream of a task (a partner's key reads no runs)."""

    id: TaskId
    after_seq: int = Field(0, ge=0)
    limit: int = Field(500, ge=1, le=500)


class A2aPushSet(A2aAgentRef):
    task_id: TaskId
    config: A2aPushConfig


class A2aPushTarget(A2aAgentRef):
    task_id: TaskId
    id: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class A2aPushQuery(A2aAgentRef):
    task_id: TaskId


class A2aCardQuery(Payload):
    org_id: UUID
    agent: AgentSlug


class A2aTask(BaseModel):
    task: dict[str, Any] = Field(description="A2A `Task` JSON.")
    run_id: UUID | None = Field(description="The run doing the task; none for an AP2 request the merchant answered "
                                            "at once (shared/contracts/agents/ap2.py).")
    org_id: UUID
    final: bool = Field(description="The task has ended (completed, failed, canceled, rejected).")


class A2aTaskPage(BaseModel):
    tasks: list[dict[str, Any]]
    next_page_token: str = ""
    page_size: int
    total_size: int


class A2aPushRecord(BaseModel):
    config: dict[str, Any] = Field(description="A2A `TaskPushNotificationConfig` JSON (its token kept, never logged).")


class A2aPushConfigs(BaseModel):
    configs: list[dict[str, Any]]


class A2aDeleted(BaseModel):
    deleted: bool


class A2aSkill(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str]


class A2aAgentFacts(BaseModel):
    """What the card says about one published agent; the gateway adds the URLs, bindings and security scheme."""

    org_id: UUID
    slug: str
    name: str
    description: str
    version: str = Field(description="The deployed (production) config version.")
    skills: list[A2aSkill]


_A2A = (Protocol.A2A,)


def _message(verb: str, payload: type[Payload], result: type[BaseModel], **options: Any) -> Any:
    return register_message(f"a2a.{verb}", subjects.proto("a2a", verb), payload, result, protocols=_A2A, **options)


A2A_SEND = _message("message.send", A2aSend, A2aTask, permission="a2a:send")
A2A_GET = _message("task.get", A2aTaskTarget, A2aTask, permission="a2a:read")
A2A_LIST = _message("task.list", A2aTaskQuery, A2aTaskPage, permission="a2a:list")
A2A_STEPS = _message("task.steps", A2aStepsQuery, RunSteps, permission="a2a:read")
A2A_CANCEL = _message("task.cancel", A2aTaskTarget, A2aTask, permission="a2a:send")
A2A_PUSH_SET = _message("push.set", A2aPushSet, A2aPushRecord, permission="a2a:send")
A2A_PUSH_GET = _message("push.get", A2aPushTarget, A2aPushRecord, permission="a2a:read")
A2A_PUSH_LIST = _message("push.list", A2aPushQuery, A2aPushConfigs, permission="a2a:list")
A2A_PUSH_DELETE = _message("push.delete", A2aPushTarget, A2aDeleted, permission="a2a:send")
A2A_CARD = _message("card", A2aCardQuery, A2aAgentFacts, requires_auth=False)
