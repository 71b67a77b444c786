"""One tool call of a run: authorized by the agent's permissions, then run where the tool lives.

Built-in tools are bus requests (tools_builtin.py), `delegate` and an external agent's `a2a__<slug>` hand
the task to another agent (delegation.py), `x402_fetch` pays for a priced URL from the org's wallet
(tools_x402.py), `ap2_purchase` buys from a merchant agent with an AP2 mandate (tools_ap2.py) and `ap2_mandates`
lists the agent's mandates (tools_ap2_held.py), HTTP and MCP
tools are requests to other servers (tools_custom.py), as are an org's active plugins' actions (`plugin__...`:
plugins_tools.py). Whatever the tool, what the model may not see is masked
out of the result before it is stored or shown to the model.
"""

from typing import Any

from services.agents.a2a_ontology import TASK_KEY
from services.agents.providers.base import ToolCall
from services.agents.run_context import retrieve
from services.agents.run_waiting import ASK_USER, ask, auth_needed
from services.agents.run_work import RunWork
from services.agents.tools_access import Grant, ToolRefused, authorize
from services.agents.tools_builtin import (
    TOOLS,
    BuiltinTool,
    DelegateArgs,
    KnowledgeSearchArgs,
    call_builtin,
    checked_arguments,
)
from services.agents.tools_custom import call_http_tool
from services.agents.tools_external import ExternalTaskArgs, is_external_tool, slug_of_tool
from shared.contracts.agents.plugins import PLUGIN_TOOL_PREFIX
from shared.kernel.errors import OneError
from shared.runtime.context import WorkContext


def _action(work: RunWork, name: str) -> str:
    return TOOLS[name].action if name in TOOLS else "execute"


async def run_tool(work: RunWork, call: ToolCall) -> Any:
    """The call's result; `Parked` when the run must wait for its caller (`ask_user`, or a refusal for want of
    credentials the caller can give: run_waiting.py). Only an A2A task's caller can answer a waiting run: in any
    other run `ask_user` is refused and such a refusal is the call's result, as any error."""
    grant = authorize(work.config, call.name, _action(work, call.name), work.ctx.auth, work.agent.id)
    answerable = bool(work.run.request.get(TASK_KEY))
    if call.name == ASK_USER:
        question = checked_arguments(TOOLS[ASK_USER], call.arguments).question
        if not answerable:
            raise ToolRefused("no caller can answer in this run (only an A2A task's can): answer with what you know")
        raise ask(call, question)
    try:
        return await _dispatch(work, call, grant)
    except OneError as error:
        parked = auth_needed(call, error) if answerable else None
        if parked is None:
            raise
        raise parked from None


async def _dispatch(work: RunWork, call: ToolCall, grant: Grant) -> Any:
    if call.name == "delegate" or is_external_tool(call.name):
        from services.agents.delegation import delegate  # delegation starts runs: it imports the run service

        grant.check_fields(call.arguments)
        args, follow_up = _delegation(call)
        return grant.mask(await delegate(work, args, external=is_external_tool(call.name), follow_up=follow_up))
    if call.name == "x402_fetch":
        from services.agents.tools_x402 import pay_and_fetch  # the x402 client loads when an agent first pays

        grant.check_fields(call.arguments)
        return grant.mask(await pay_and_fetch(work, checked_arguments(TOOLS["x402_fetch"], call.arguments)))
    if call.name == "ap2_purchase":
        from services.agents.tools_ap2 import purchase  # the A2A client loads when an agent first buys

        grant.check_fields(call.arguments)
        return grant.mask(await purchase(work, checked_arguments(TOOLS["ap2_purchase"], call.arguments)))
    if call.name == "ap2_mandates":
        from services.agents.tools_ap2_held import held

        grant.check_fields(call.arguments)
        return grant.mask(await held(work, checked_arguments(TOOLS["ap2_mandates"], call.arguments)))
    if call.name in TOOLS:
        return await call_builtin(work.ctx, TOOLS[call.name], grant, call.arguments, _scoped_search(work))
    if call.name.startswith(PLUGIN_TOOL_PREFIX):
        from services.agents.plugins_tools import call_plugin_tool  # an org's active plugin's action

        grant.check_fields(call.arguments)
        return grant.mask(await call_plugin_tool(work, call.name, call.arguments))
    http = next((t for t in work.config.get("http_tools") or [] if t["name"] == call.name), None)
    grant.check_fields(call.arguments)
    if http is not None:
        headers = {"X-One-Org": str(work.run.org_id), "X-One-Run": str(work.run.id), "X-One-Agent": work.agent.slug}
        return grant.mask(await call_http_tool(work.state.http, http, call.arguments, headers))
    return grant.mask(await work.mcp.call(call.name, call.arguments))


def _delegation(call: ToolCall) -> tuple[DelegateArgs, dict[str, str]]:
    """`delegate`'s arguments, or an external agent's tool (`a2a__<slug>`: the task, and the remote task or
    context it continues) as the same delegation."""
    if call.name == "delegate":
        return checked_arguments(TOOLS["delegate"], call.arguments), {}
    args = checked_arguments(BuiltinTool(call.name, "", ExternalTaskArgs, "execute"), call.arguments)
    return DelegateArgs(agent=slug_of_tool(call.name), task=args.task), args.follow_up()


def _scoped_search(work: RunWork) -> Any:
    """knowledge_search within the agent's knowledge scope, whatever the model asks."""

    async def search(ctx: WorkContext, grant: Grant, args: KnowledgeSearchArgs) -> Any:
        scope = {**(work.config.get("knowledge") or {}), "enabled": True, "k": args.k}
        hits = await retrieve(ctx, scope, args.query, auth=grant.auth)
        return {"hits": [hit.model_dump(mode="json") for hit in hits]}

    return search
