"""What one run works with: its row, its agent and config version, the auth it acts with, its step log.

The auth is the caller's, as verified at the edge when the run started and stored with the run, so a
replica that resumes the run acts for the same person with the same rights (and nobody else's).
Inference is counted against the org's quota from the run's reservation (inference.py).
"""

from dataclasses import dataclass, field
from typing import Any

from services.agents import inference
from services.agents.plugins_tools import tool_specs as plugin_tool_specs
from services.agents.providers.base import ModelProvider, ToolSpec
from services.agents.rows import AgentRow, RunRow
from services.agents.state import AgentsState, of as state_of
from services.agents.steps import StepLog
from services.agents.tools_access import agents_identity
from services.agents.tools_builtin import TOOLS
from services.agents.tools_custom import McpTools, http_tool_specs
from services.agents.tools_external import tool_specs as external_tool_specs
from shared.kernel.envelope import AuthContext, Envelope, Protocol
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime


def run_auth(run: RunRow) -> AuthContext:
    stored = run.auth
    return AuthContext(run.org_id, run.actor_id, stored.get("role"), tuple(stored.get("permissions") or ()),
                       tuple(stored.get("scopes") or ()))


def run_context(runtime: ServiceRuntime, run: RunRow) -> WorkContext:
    """The context a run's work acts in: the caller's auth, correlated with the run."""
    auth = run_auth(run)
    envelope = Envelope(protocol=Protocol(run.auth.get("protocol", "native")), type="agents.run", org_id=run.org_id,
                        actor_id=auth.actor_id, role=auth.role, permissions=auth.permissions, scopes=auth.scopes,
                        correlation_id=run.id)
    return WorkContext(envelope, None, runtime)


@dataclass
class RunWork:
    runtime: ServiceRuntime
    ctx: WorkContext
    run: RunRow
    agent: AgentRow
    config: dict[str, Any]
    steps: StepLog
    preread: Any = None
    """A new run's prompts and history, read when it started (run_context.read_context); None: read them."""
    context: Any = None
    """A new run's context (messages, citations), built and stored with the run when it needed no retrieval
    (service_runs.start_run); None: build it and store its first steps (run_lifecycle._start)."""
    mcp: McpTools = field(init=False)

    def __post_init__(self) -> None:
        self.mcp = McpTools(self.config.get("mcp_servers") or [])

    @property
    def state(self) -> AgentsState:
        return state_of(self.runtime)

    @property
    def service_auth(self) -> AuthContext:
        return agents_identity(self.run.org_id, self.run.actor_id)

    def model(self) -> tuple[ModelProvider, str]:
        return self.state.providers.resolve(self.config["model"])

    async def tool_specs(self) -> list[ToolSpec]:
        offered = set(self.config.get("tools") or [])
        specs = [TOOLS[name].tool_spec() for name in TOOLS if name in offered]
        return (specs + http_tool_specs(self.config) + await external_tool_specs(self) + await plugin_tool_specs(self)
                + await self.mcp.specs())

    def funded(self, iteration: int) -> bool:
        """Whether completion `iteration` is paid for by the run's reservation (no call to tenancy)."""
        return inference.funded(self.run, iteration)

    async def consume_inference(self, iteration: int) -> None:
        """The unit of completion `iteration`, or `QuotaExceeded` once the reservation is spent and the quota is."""
        await inference.fund(self.ctx, self.run, iteration)
