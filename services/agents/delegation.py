"""Delegation: an agent hands a task to another agent of its org and gets its answer (seed 001, 003).

At most 3 levels below the run a person started, never to an agent already in the chain (a cycle),
and only to the agents named in `delegates_to` when the config names any. Each delegation is a
`task_event` (`delegated`, then `completed` or `failed`) and a `delegated` connection between the two
agents' things. An external A2A agent of the org (tools_external.py, named by slug or id) is delegated to
the same way, under the same depth rule, but only when `delegates_to` names it (a task leaves the platform):
its connection and events say `protocol: a2a` and the remote platform's name. An `external_agent` thing
the org never added as an external agent (no card, no credential) is refused with `external_agent_unavailable`.
"""

from typing import Any
from uuid import UUID

from services.agents import repository as agents_repo, tools_external
from services.agents.models_external import ExternalAgentRow
from services.agents.run_work import RunWork
from services.agents.service_runs import start_child, to_run
from services.agents.tools_builtin import DelegateArgs
from shared.contracts.agents import (
    AgentNotFound,
    DelegationRefused,
    ExternalAgentNotFound,
    ExternalAgentUnavailable,
)
from shared.contracts.graph import CONNECTION_CREATE, THING_GET
from shared.kernel.envelope import Protocol
from shared.kernel.ontology import EventType

MAX_DEPTH = 3


async def _target(work: RunWork, name: str, external: bool) -> Any:
    if external:  # an external agent's own tool (`a2a__<slug>`): that external agent, whatever else has the slug
        found = await tools_external.find(work, name)
        if found is None:
            raise ExternalAgentNotFound(f"no external agent {name!r} in this organization")
        return found
    org_id = work.run.org_id
    try:
        thing_id = UUID(name)
    except ValueError:
        thing_id = None
    async with work.runtime.db.transaction(org_id) as session:
        agent = await agents_repo.get_agent(session, org_id, slug=None if thing_id else name, agent_id=thing_id)
    if agent is not None:
        return agent
    external = await tools_external.find(work, name)
    if external is not None:
        return external
    if thing_id is not None:
        found = await work.ctx.call(THING_GET, {"id": str(thing_id)})
        if found.thing.type == "external_agent":
            raise ExternalAgentUnavailable("this external_agent thing was not added as an external A2A agent "
                                           "(`agents.external.add`: its card and credential)",
                                           {"thing_id": str(thing_id)})
    raise AgentNotFound(f"no agent {name!r} in this organization")


def _check(work: RunWork, target: Any) -> None:
    depth = work.run.depth + 1
    if depth > MAX_DEPTH:
        raise DelegationRefused(f"delegation depth {depth} is more than {MAX_DEPTH}", {"depth": depth,
                                                                                       "max_depth": MAX_DEPTH})
    if target.id in work.run.chain:
        raise DelegationRefused(f"agent {target.slug} is already working on this task (a cycle)",
                                {"chain": [str(a) for a in work.run.chain], "agent": target.slug})
    allowed = work.config.get("delegates_to") or []
    if (allowed or isinstance(target, ExternalAgentRow)) and target.slug not in allowed:
        raise DelegationRefused(f"this agent may delegate only to {', '.join(allowed) or 'no external agent'}",
                                {"allowed": allowed})
    if target.status != "active":
        raise DelegationRefused(f"agent {target.slug} is archived")


def _via(target: Any) -> dict[str, Any]:
    return tools_external.via(target) if isinstance(target, ExternalAgentRow) else {"protocol": "native"}


async def _task_event(work: RunWork, target: Any, action: str, **metadata: Any) -> None:
    via = _via(target)
    async with work.ctx.transaction() as tx:
        await tx.emit(EventType.TASK_EVENT, target_id=target.id, target_type=target.type, protocol=Protocol(
            via["protocol"]), metadata={
            "action": action, **via, "taskType": "agent_run", "fromAgentId": str(work.agent.id),
            "toAgentId": str(target.id), "parentRunId": str(work.run.id), **metadata})


async def _run_child(work: RunWork, target: Any, task: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the agent of this org to its end: (the tool's result, what the last task_event adds)."""
    run = to_run(await start_child(work, target, task))
    error = {"error": run.error} if run.error else {}
    return ({"agent": target.slug, "run_id": str(run.id), "status": run.status.value, "answer": run.answer, **error},
            {"runId": str(run.id), **error})


async def delegate(work: RunWork, args: DelegateArgs, *, external: bool = False,
                   follow_up: dict[str, str] | None = None) -> dict[str, Any]:
    """Hand `args.task` to the agent named (`external`: only an external agent; `follow_up`: the remote's task /
    context to continue); the tool's result."""
    target = await _target(work, args.agent, external)
    _check(work, target)
    await work.ctx.call(CONNECTION_CREATE, {
        "from_id": str(work.agent.id), "to_id": str(target.id), "type": "delegated",
        "metadata": {"taskType": "agent_run", **_via(target), "parentRunId": str(work.run.id)},
    }, auth=work.service_auth)
    await _task_event(work, target, "delegated", depth=work.run.depth + 1)
    try:
        if isinstance(target, ExternalAgentRow):
            result, outcome = await tools_external.exchange(work, target, args.task, follow_up or {})
        else:
            result, outcome = await _run_child(work, target, args.task)
    except Exception as error:
        await _task_event(work, target, "failed", error=getattr(error, "code", "internal"))
        raise
    await _task_event(work, target, "completed" if result["status"] == "completed" else "failed", **outcome)
    return result
