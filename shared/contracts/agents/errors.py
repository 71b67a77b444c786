"""The agents service's errors: refinements of the shared families, so callers can catch either."""

from shared.kernel.errors import Conflict, Forbidden, InvalidRequest, NotFound, QuotaExceeded, Unavailable


class AgentsError(Exception):
    """Marker root: every error raised by the agents service's own rules."""


class AgentNotFound(AgentsError, NotFound):
    code = "agent_not_found"


class AgentArchived(AgentsError, Conflict):
    """An archived agent keeps its configs and runs but does not run again."""

    code = "agent_archived"


class SlugTaken(AgentsError, Conflict):
    code = "agent_slug_taken"


class ConfigVersionConflict(AgentsError, Conflict):
    """The development config changed since the caller read it (`expected_version` is stale)."""

    code = "config_version_conflict"


class NotDeployed(AgentsError, Conflict):
    """A production run of an agent that was never deployed."""

    code = "agent_not_deployed"


class InvalidAgentConfig(AgentsError, InvalidRequest):
    """A config naming an unknown tool or model, or a permission that can never apply."""

    code = "invalid_agent_config"


class PromptNotFound(AgentsError, NotFound):
    code = "prompt_not_found"


class ConversationNotFound(AgentsError, NotFound):
    code = "conversation_not_found"


class ConversationClosed(AgentsError, Conflict):
    code = "conversation_closed"


class ParticipantNotFound(AgentsError, NotFound):
    code = "participant_not_found"


class RunNotFound(AgentsError, NotFound):
    code = "run_not_found"


class IterationLimit(AgentsError, Conflict):
    """The model still asked for tools when the run reached its agent's `max_iterations`: the run failed."""

    code = "max_iterations"


class InferenceQuotaExceeded(AgentsError, QuotaExceeded):
    """The org's `inference` quota is used up; the run failed before calling the model again."""

    code = "quota_exceeded"


class DelegationRefused(AgentsError, Forbidden):
    """Delegation deeper than 3, to an agent already in the chain (a cycle), or outside `delegates_to`."""

    code = "delegation_refused"


class ExternalAgentUnavailable(AgentsError, Unavailable):
    """Delegation to an `external_agent` thing the org never added as an external A2A agent (no card, no credential)."""

    code = "external_agent_unavailable"


class ModelUnavailable(AgentsError, Unavailable):
    """The model provider could not be reached or refused the request."""

    code = "model_unavailable"
