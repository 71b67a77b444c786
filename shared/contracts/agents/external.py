"""External agents: A2A agents of other platforms that an org's agents may delegate tasks to (issue #19, client half).

An external agent is known by its agent card (`agents.external.add` fetches it over HTTP, validates it and keeps
it) and named by a slug of the org, which an agent's config lists in `delegates_to` to get a tool for it
(`a2a__<slug>`). The credential the remote demands (an API key or a bearer token, placed as the card's security
scheme says) is stored by the agents service and never returned: records say `has_credentials` and show its last
four characters. Every message is RBAC-checked on `agents:*` and org-scoped.
"""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, SecretStr, StringConstraints, model_validator

from shared.contracts.agents.errors import AgentsError
from shared.contracts.agents.messages import Slug, _message
from shared.kernel.envelope import Payload
from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unavailable

CardUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2000)]
EXTERNAL_TOOL_PREFIX = "a2a__"
"""An agent whose `delegates_to` names an external agent gets the tool `a2a__<slug>` for it."""


class ExternalAgentNotFound(AgentsError, NotFound):
    code = "external_agent_not_found"


class ExternalAgentExists(AgentsError, Conflict):
    """The slug, or the card URL of an active external agent, is taken in the org."""

    code = "external_agent_exists"


class AgentCardInvalid(AgentsError, InvalidRequest):
    """What the card URL answered is not an A2A agent card we can talk to (no name, no JSON-RPC/REST interface)."""

    code = "agent_card_invalid"


class AgentCardUnreachable(AgentsError, InvalidRequest):
    """The card URL given did not answer with a card (network, timeout, refused, 5xx): the caller's URL to fix."""

    code = "agent_card_unreachable"


class ExternalAgentUnreachable(AgentsError, Unavailable):
    """The remote agent did not answer a task (network, 5xx, timeout)."""

    code = "external_agent_unreachable"


class ExternalAgentAuthRefused(AgentsError, Forbidden):
    """The remote refused our credentials (HTTP 401/403, or the task asked for authentication)."""

    code = "external_agent_auth_refused"


class ExternalTaskFailed(AgentsError, Conflict):
    """The remote task ended failed, rejected or canceled, or the remote answered with a protocol error."""

    code = "external_task_failed"


class ExternalSkill(BaseModel):
    id: str
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)


class ExternalInterface(BaseModel):
    url: str
    protocol_binding: str
    protocol_version: str = ""


class ExternalAgent(BaseModel):
    """An external A2A agent as the org knows it; `card` is the card as resolved (A2A JSON)."""

    id: UUID = Field(description="The `external_agent` thing's id.")
    slug: str
    name: str
    description: str
    card_url: str
    provider: str = Field(description="The card's provider organization: the remote platform's name.")
    provider_url: str = ""
    version: str = ""
    streaming: bool
    skills: list[ExternalSkill]
    interfaces: list[ExternalInterface]
    security_schemes: list[str] = Field(description="The schemes the card declares (names).")
    has_credentials: bool
    credentials_hint: str | None = Field(None, description="The credential's last four characters, or None.")
    timeout: float
    status: str
    messages_sent: int
    messages_received: int
    last_used_at: datetime | None = None
    resolved_at: datetime
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    card: dict[str, Any]


class ExternalAgentAdd(Payload):
    card_url: CardUrl = Field(description="The agent's base URL (its card is at `/.well-known/agent-card.json` "
                                          "under it) or the card's own URL (ending in `.json`).")
    slug: Slug | None = Field(None, description="Its name in this org (default: from the card's name).")
    api_key: SecretStr | None = Field(None, description="The credential the remote demands (API key or bearer).")
    timeout: float = Field(120.0, gt=0, le=600, description="Seconds a delegated task may take.")


class ExternalAgentRef(Payload):
    """An external agent by slug or id (exactly one)."""

    slug: Slug | None = None
    id: UUID | None = None

    @model_validator(mode="after")
    def _one(self) -> "ExternalAgentRef":
        if (self.slug is None) == (self.id is None):
            raise ValueError("name the external agent by slug or by id (one of them)")
        return self


class ExternalAgentCredentials(ExternalAgentRef):
    api_key: SecretStr | None = Field(None, description="The new credential; unset removes the stored one.")


class ExternalAgentQuery(Payload):
    include_archived: bool = False
    cursor: UUID | None = None
    limit: int = Field(50, ge=1, le=200)


class ExternalAgentPage(BaseModel):
    external_agents: list[ExternalAgent]
    next_cursor: UUID | None = None


EXTERNAL_ADD = _message("agents.external.add", ExternalAgentAdd, ExternalAgent)
EXTERNAL_GET = _message("agents.external.get", ExternalAgentRef, ExternalAgent)
EXTERNAL_LIST = _message("agents.external.list", ExternalAgentQuery, ExternalAgentPage)
EXTERNAL_CREDENTIALS = _message("agents.external.credentials", ExternalAgentCredentials, ExternalAgent)
EXTERNAL_REFRESH = _message("agents.external.refresh", ExternalAgentRef, ExternalAgent)
EXTERNAL_ARCHIVE = _message("agents.external.archive", ExternalAgentRef, ExternalAgent)
