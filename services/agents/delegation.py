"""Delegation: an agent hands a task to another agent of its org and gets its answer (seed 001, 003).

At most 3 levels below the run a person started, never to an agent already in the chain (a cycle),
and only to the agents named in `delegates_to` when the config names any. Each delegation is a
`task_event` (`delegated`, then `completed` or `failed`) and a `delegated` connection between the two
agents' things. An `external_agent` thing is recognised but refused until the A2A client exists.
"""

from typing import Any
from uuid import UUID

from services.agents import repository as agents_repo
from services.agents.run_work import RunWork
from services.agents.service_runs import start_child, to_run
from services.agents.tools_builtin import DelegateArgs
from shared.contracts.agents import AgentNotFound, DelegationRefused, ExternalAgentUnavailable
from shared.contracts.graph import CONNECTION_CREATE, THING_GET
from shared.kernel.ontology import EventType

MAX_DEPTH = 3


async def _target(work: RunWork, name: str) -> Any:
    org_id = work.run.org_id
    try:
        thing_id = UUID(name)
    except ValueError:
        thing_id = None
    async with work.runtime.db.transaction(org_id) as session:
        agent = await agents_repo.get_agent(session, org_id, slug=None if thing_id else name, agent_id=thing_id)
    if agent is not None:
        return agent
    if thing_id is not None:
        found = await work.ctx.call(THING_GET, {"id": str(thing_id)})
        if found.thing.type == "external_agent":
            raise ExternalAgentUnavailable("delegation to an external agent needs the A2A adapter, which is not "
                                           "available yet", {"thing_id": str(thing_id)})
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
    if allowed and target.slug not in allowed:
        raise DelegationRefused(f"this agent may delegate only to {', '.join(allowed)}", {"allowed": allowed})
    if target.status != "active":
        raise DelegationRefused(f"agent {target.slug} is archived")


async def _task_event(work: RunWork, target: Any, action: str, **metadata: Any) -> None:
    async with work.ctx.transaction() as tx:
        await tx.emit(EventType.TASK_EVENT, target_id=target.id, target_type=target.type, metadata={
            "action": action, "protocol": "native", "taskType": "agent_run", "fromAgentId": str(work.agent.id),
            "toAgentId": str(target.id), "parentRunId": str(work.run.id), **metadata})


async def delegate(work: RunWork, args: DelegateArgs) -> dict[str, Any]:
    target = await _target(work, args.agent)
    _check(work, target)
    await work.ctx.call(CONNECTION_CREATE, {
        "from_id": str(work.agent.id), "to_id": str(target.id), "type": "delegated",
        "metadata": {"taskType": "agent_run", "protocol": "native", "parentRunId": str(work.run.id)},
    }, auth=work.service_auth)
    await _task_event(work, target, "delegated", depth=work.run.depth + 1)
    try:
        child = await start_child(work, target, args.task)
    except Exception as error:
        await _task_event(work, target, "failed", error=getattr(error, "code", "internal"))
        raise
    run = to_run(child)
    await _task_event(work, target, "completed" if run.status == "completed" else "failed", runId=str(run.id),
                      **({"error": run.error} if run.error else {}))
    return {"agent": target.slug, "run_id": str(run.id), "status": run.status.value, "answer": run.answer,
            **({"error": run.error} if run.error else {})}
