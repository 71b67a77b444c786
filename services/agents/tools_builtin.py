"""The built-in tools: each is one bus request to the service that owns the data, made with the grant's auth.

A tool's parameters are its contract payload's JSON schema, so what the model is told is what the
service checks; the model's arguments are validated by the same model (extra fields refused, so an
`org_id` in the arguments is an error, never a way into another org). `delegate` is not here: it runs
another agent in this service (delegation.py); nor is `x402_fetch`: it pays over HTTP (tools_x402.py); nor
`ap2_purchase`: it buys over A2A with an AP2 mandate (tools_ap2.py); nor `ap2_mandates`: it lists the agent's
own mandates (tools_ap2_held.py); nor `ask_user`: the run waits for its caller's answer (run_waiting.py).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from services.agents.providers.base import ToolSpec
from services.agents.run_waiting import ASK_USER, AskUserArgs
from services.agents.tools_access import Grant
from shared.contracts import eventlog, graph, jobs
from shared.kernel.envelope import MessageSpec, Payload
from shared.kernel.errors import InvalidRequest
from shared.runtime.context import WorkContext


class KnowledgeSearchArgs(Payload):
    query: str = Field(min_length=1, max_length=4000, description="What to look for, in words.")
    k: int = Field(5, ge=1, le=20)


class DelegateArgs(Payload):
    agent: str = Field(min_length=1, max_length=120, description="The slug of another agent of the organization, "
                                                                  "or the id of an external_agent thing.")
    task: str = Field(min_length=1, max_length=8000, description="What the other agent should do, in full.")


class X402FetchArgs(Payload):
    url: str = Field(pattern=r"^https?://", max_length=2000, description="The x402-priced URL to fetch and pay for.")
    method: Literal["GET", "POST"] = "GET"
    body: dict[str, Any] | None = Field(None, description="A JSON body to send (POST).")


class Ap2Item(Payload):
    product_id: str = Field(min_length=1, max_length=100, description="The merchant's product id (its catalog's).")
    quantity: int = Field(1, ge=1, le=1000)


class Ap2PurchaseArgs(Payload):
    merchant: str = Field(min_length=1, max_length=120,
                          description="The merchant agent: the slug (or id) of an external A2A agent of the org "
                                      "selling over AP2.")
    items: list[Ap2Item] = Field(min_length=1, max_length=50, description="What to buy.")
    mandate_id: str = Field(min_length=1, max_length=100, description="The open payment mandate granted to this "
                                                                      "agent to pay with.")
    checkout_mandate_id: str | None = Field(None, min_length=1, max_length=100, description="An open checkout "
                                            "mandate granted to this agent that must authorize the checkout's "
                                            "items and merchant first (the one the payment mandate names).")


class Ap2MandatesArgs(Payload):
    usable_only: bool = Field(False, description="Only the mandates that can pay a purchase now.")
    payment_only: bool = Field(True, description="Only payment mandates (what ap2_purchase pays with); false: "
                                                 "checkout mandates too.")


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    name: str
    description: str
    args: type[Payload]
    action: str  # the RBAC action a permission must allow
    spec: MessageSpec[Any, Any] | None = None  # None: handled in this service (knowledge_search, delegate)

    def tool_spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.args.model_json_schema())


def _tool(name: str, description: str, spec: MessageSpec[Any, Any] | None, action: str,
          args: type[Payload] | None = None) -> BuiltinTool:
    return BuiltinTool(name, description, args or spec.payload, action, spec)


TOOLS: dict[str, BuiltinTool] = {t.name: t for t in (
    _tool("thing_create", "Create a thing (an entity of the ontology) in the organization.", graph.THING_CREATE, "create"),
    _tool("thing_get", "Read one thing by id, optionally with connected things.", graph.THING_GET, "read"),
    _tool("thing_query", "Find things by type, status, name text or property filters.", graph.THING_QUERY, "list"),
    _tool("thing_update", "Change a thing's name, properties (merged) or status.", graph.THING_UPDATE, "update"),
    _tool("thing_archive", "Archive a thing.", graph.THING_ARCHIVE, "archive"),
    _tool("connect", "Connect two things with a typed connection.", graph.CONNECTION_CREATE, "create"),
    _tool("disconnect", "End a connection (it stays in the history).", graph.CONNECTION_END, "delete"),
    _tool("event_emit", "Record an event in the organization's event log.", eventlog.APPEND, "create"),
    _tool("event_query", "Query the organization's event log.", eventlog.QUERY, "list"),
    _tool("knowledge_search", "Search the organization's knowledge by meaning (within this agent's scope).",
          None, "read", KnowledgeSearchArgs),
    _tool("job_enqueue", "Enqueue a background job (an agent run, an ingest, a notification, a cleanup).",
          jobs.JOB_ENQUEUE, "create"),
    _tool("job_status", "Read a job's state.", jobs.JOB_GET, "read"),
    _tool("delegate", "Hand a task to another agent and get its answer.", None, "execute", DelegateArgs),
    _tool("x402_fetch", "Fetch an x402-priced URL, paying its price from the organization's wallet within this "
          "agent's budget.", None, "execute", X402FetchArgs),
    _tool("ap2_purchase", "Buy products from a merchant agent over A2A, paying with an AP2 payment mandate granted to "
          "this agent (refused, before anything is paid, when the mandate's constraints forbid the price).", None,
          "execute", Ap2PurchaseArgs),
    _tool("ap2_mandates", "List the AP2 mandates granted to this agent, with their constraints and what remains of "
          "each (budget and uses left, the most one purchase may spend now, in minor units): choose the mandate_id "
          "for ap2_purchase.", None, "read", Ap2MandatesArgs),
    _tool(ASK_USER, "Ask whoever started this run a question you cannot answer without them; the run waits for "
          "their answer, which comes back as this call's result.", None, "read", AskUserArgs),
)}


async def _thing_type(ctx: WorkContext, grant: Grant, thing_id: Any) -> str:
    found = await ctx.call(graph.THING_GET, {"id": str(thing_id)}, auth=grant.auth)
    return found.thing.type


async def _check_types(ctx: WorkContext, tool: BuiltinTool, grant: Grant, args: BaseModel) -> None:
    """A permission limited to some thing types: the thing (or both ends of a connection) must be of them."""
    if not grant.thing_types:
        return
    if tool.name == "thing_create" or tool.name == "thing_query":
        grant.check_type(getattr(args, "type", None))
    elif tool.name in ("thing_get", "thing_update", "thing_archive"):
        grant.check_type(await _thing_type(ctx, grant, args.id))
    elif tool.name == "connect":
        for end in (args.from_id, args.to_id):
            grant.check_type(await _thing_type(ctx, grant, end))


def checked_arguments(tool: BuiltinTool, arguments: dict[str, Any]) -> Any:
    """The model's arguments as the tool's payload model, or `InvalidRequest` saying what is wrong (no input echoed)."""
    try:
        return tool.args.model_validate(arguments)
    except ValidationError as error:
        raise InvalidRequest(f"invalid arguments for {tool.name}", {
            "errors": error.errors(include_url=False, include_context=False, include_input=False)}) from None


SearchScoped = Callable[[WorkContext, Grant, KnowledgeSearchArgs], Awaitable[Any]]


async def call_builtin(ctx: WorkContext, tool: BuiltinTool, grant: Grant, arguments: dict[str, Any],
                       search: SearchScoped) -> Any:
    """Run the tool: validate the model's arguments, check the grant, make the bus request; the reply, masked."""
    grant.check_fields(arguments)
    args = checked_arguments(tool, arguments)
    await _check_types(ctx, tool, grant, args)
    if tool.name == "knowledge_search":
        reply = await search(ctx, grant, args)
    else:
        reply = await ctx.call(tool.spec, args, auth=grant.auth)
    data = reply.model_dump(mode="json") if isinstance(reply, BaseModel) else reply
    return grant.mask(data)


