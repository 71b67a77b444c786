"""A2A tasks as runs: send (a message starts a run of the agent), get, list, cancel, push configs, the agent card.

A task is one run of the agent (`service_runs.chat`, the caller's auth, envelope tagged `a2a`): its `contextId`
is the run's conversation (a message naming a `contextId` continues that conversation), its state the run's
(`running` → working, `completed`, `failed`), or `canceled` once a cancel stopped the run. Its artifact is the
answer, with the citations as a data part. The task row keeps what the run cannot: the A2A messages, the caller
and the cancel. Every message is a `communication_event`, every task a `task_event` (`metadata.protocol = "a2a"`);
the caller is an `external_agent` thing with a `communicated` connection to the agent that counts the messages
(a2a_ontology.py, off the reply's path). No SQL here (repository_a2a.py), no NATS.
"""

import asyncio
import dataclasses
import logging
from typing import Any
from uuid import UUID

from services.agents import (
    a2a_ap2,
    a2a_ontology,
    a2a_push,
    inference,
    repository as agents_repo,
    repository_a2a as repo,
    repository_runs as runs_repo,
    run_waiting,
    service_runs as runs,
)
from services.agents.a2a_tasks import (
    CANCELED,
    FINAL,
    INPUT_MODES,
    REJECTED,
    message_text,
    state_of_task,
    to_config,
    to_task,
    unsupported_modes,
    waiting_message,
)
from services.agents.models_a2a import TaskRow
from services.agents.rows import RunRow
from services.agents.service_agents import load_agent
from services.agents.state import of as state_of
from services.agents.steps import StepLog, to_step
from shared.contracts.a2a import (
    A2aAgentFacts,
    A2aCardQuery,
    A2aPushConfigs,
    A2aPushQuery,
    A2aPushRecord,
    A2aPushSet,
    A2aPushTarget,
    A2aSend,
    A2aSkill,
    A2aStepsQuery,
    A2aTask,
    A2aTaskNotCancelable,
    A2aTaskNotFound,
    A2aTaskPage,
    A2aTaskQuery,
    A2aTaskTarget,
    A2aTaskTerminal,
)
from shared.contracts.agents import AgentArchived, AgentNotFound, AgentRef, ChatRequest, NotDeployed, RunSteps, StepKind
from shared.kernel.envelope import Protocol
from shared.kernel.errors import InvalidRequest, OneError, QuotaExceeded
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext
from shared.runtime.outbox import OutboxMessage

log = logging.getLogger(__name__)
REFUSALS = (QuotaExceeded, AgentArchived, NotDeployed)
"""Why an agent refuses a task before it starts (the task `rejected`): the org's quota is spent, the agent is
archived or not deployed (a caller that reached it before the gateway's cache knew)."""

def _uuid(value: Any, field: str) -> UUID | None:
    if value in (None, ""):
        return None
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidRequest(f"{field} is not an id of this platform", {"field": field}) from None


def _native(ctx: WorkContext, *scopes: str) -> WorkContext:
    """The work as the platform's own (a run, the quota): other services speak `native`; only this service's A2A
    events carry the `a2a` tag. `scopes` widen a scoped key for what A2A implies (running the agent)."""
    update: dict[str, Any] = {"protocol": Protocol.NATIVE}
    if ctx.envelope.scopes and scopes:
        update["scopes"] = (*ctx.envelope.scopes, *scopes)
    return dataclasses.replace(ctx, envelope=ctx.envelope.model_copy(update=update))


async def _task(ctx: WorkContext, agent_slug: str, task_id: str, *, for_update: bool = False) -> tuple[TaskRow, RunRow]:
    agent = await load_agent(ctx, AgentRef(slug=agent_slug))
    try:
        found = await repo.get_task(ctx.session, ctx.auth.org_id, agent.id, UUID(task_id), for_update=for_update)
    except ValueError:
        found = None
    if found is None:
        raise A2aTaskNotFound(f"no task {task_id} of agent {agent_slug}", {"taskId": task_id})
    return found


async def send(ctx: WorkContext, payload: A2aSend) -> A2aTask:
    require(ctx.auth, "a2a", "send")
    message = dict(payload.message)
    context_id = _uuid(message.get("contextId"), "message.contextId")
    if a2a_ap2.asks(message):  # AP2 data parts: the merchant answers, not the model (a2a_ap2.py)
        return await a2a_ap2.answer(ctx, payload, context_id)
    unsupported = unsupported_modes(message)
    if unsupported and not message.get("taskId"):
        return await _reject(ctx, payload, message, context_id, InvalidRequest(
            f"this agent reads {' and '.join(INPUT_MODES)}, not {', '.join(unsupported)}",
            {"code": "unsupported_input_mode", "accepted": list(INPUT_MODES), "unsupported": unsupported}))
    text = message_text(message)
    if message.get("taskId"):
        return await _reply(ctx, payload, message, text)
    task_id = uuid7()
    made: dict[str, TaskRow] = {}

    async def record(start: WorkContext, run: RunRow) -> list[OutboxMessage]:
        """In the run's start transaction: the task, its push config; its events (this work's, tagged `a2a`)."""
        received = {**message, "taskId": str(task_id), "contextId": str(run.conversation_id),
                    "role": message.get("role") or "ROLE_USER"}
        tx = WorkContext(ctx.envelope, start.session, ctx.runtime)
        made["task"] = await repo.insert_task(tx.session, {
            "id": task_id, "org_id": run.org_id, "agent_id": run.agent_id, "agent_slug": run.agent_slug,
            "run_id": run.id, "context_id": run.conversation_id, "history": [received],
            "metadata": {"caller": payload.caller.model_dump(exclude_none=True)}})
        if payload.push is not None:
            await a2a_push.put(tx, task_id, payload.push)
        events = tx.event_messages(a2a_ontology.received_events(made["task"], run, payload.caller, message))
        start.staged_events += tx.staged_events
        return events

    try:
        run = await runs.chat_run(_native(ctx, "agents:run"), ChatRequest(
            slug=payload.agent, message=text, thread_id=context_id, wait=not payload.return_immediately), record,
            extra={a2a_ontology.TASK_KEY: str(task_id)})
    except REFUSALS as error:
        return await _reject(ctx, payload, message, context_id, error)
    a2a_ontology.count_later(ctx, run, payload.caller)
    if payload.return_immediately:  # as it stands now (a blocking send has the run as it ended)
        async with ctx.transaction() as tx:
            run = await runs_repo.get_run(tx.session, ctx.auth.org_id, run.id) or run
    return to_task(made["task"], run, history_length=payload.history_length)


async def _reject(ctx: WorkContext, payload: A2aSend, message: dict[str, Any], context_id: UUID | None,
                  error: OneError) -> A2aTask:
    """The agent refuses the task before any run (`rejected`, not `failed`): stored, with why, and logged."""
    task_id, context_id = uuid7(), context_id or uuid7()
    received = {**message, "taskId": str(task_id), "contextId": str(context_id),
                "role": message.get("role") or "ROLE_USER"}
    code = error.details.get("code") if error.code in ("invalid", "invalid_request") else error.code
    async with ctx.transaction() as tx:
        agent = await load_agent(tx, AgentRef(slug=payload.agent))
        task = await repo.insert_task(tx.session, {
            "id": task_id, "org_id": ctx.auth.org_id, "agent_id": agent.id, "agent_slug": agent.slug,
            "run_id": None, "context_id": context_id, "state": REJECTED, "history": [received],
            "metadata": {"caller": payload.caller.model_dump(exclude_none=True),
                         "rejection": {"code": code or error.code, "message": error.message}}})
        events = a2a_ontology.received_events(task, None, payload.caller, message)
        events[-1][1].metadata.update(action="rejected", reason=code or error.code)
        await tx.emit_many(events)
    return to_task(task, None, history_length=payload.history_length)


async def _reply(ctx: WorkContext, payload: A2aSend, message: dict[str, Any], text: str) -> A2aTask:
    """The caller's answer to a task that waits for it (input-required, auth-required): its run goes on, in the same
    conversation (run_waiting.py); any other task named by a message is refused (`a2a_task_terminal`)."""
    async with ctx.transaction() as tx:
        task, run = await _task(tx, payload.agent, str(message["taskId"]), for_update=True)
        state = state_of_task(task, run)
        woken = await run_waiting.wake(tx, run, text) if run is not None and run.status == "waiting" else None
        if woken is None:
            raise A2aTaskTerminal(f"task {task.id} is {state}, not waiting for a reply: send a new message with its "
                                  "contextId to go on", {"taskId": str(task.id), "state": state})
        received = {**message, "taskId": str(task.id), "contextId": str(task.context_id),
                    "role": message.get("role") or "ROLE_USER"}
        await repo.update_task(tx.session, task.org_id, task.id, add_history=[waiting_message(task, run), received])
        turn = len(task.history) + 2
        if payload.push is not None:
            await a2a_push.put(tx, task.id, payload.push)
        await a2a_push.again(tx, task.id, turn)
        events = a2a_ontology.received_events(task, run, payload.caller, message)
        events[-1][1].metadata.update(action="resumed", waitedFor=state)
        await tx.emit_many(events)
    running = run_waiting.resume_in_task(ctx, woken)
    a2a_ontology.count_later(ctx, woken, payload.caller)
    if not payload.return_immediately:
        await asyncio.shield(running)
    async with ctx.transaction() as tx:
        task, run = await _task(tx, payload.agent, str(task.id))
    return to_task(task, run, history_length=payload.history_length)


async def get(ctx: WorkContext, target: A2aTaskTarget) -> A2aTask:
    require(ctx.auth, "a2a", "read")
    task, run = await _task(ctx, target.agent, target.id)
    return to_task(task, run, history_length=target.history_length)


async def list_tasks(ctx: WorkContext, query: A2aTaskQuery) -> A2aTaskPage:
    require(ctx.auth, "a2a", "list")
    agent = await load_agent(ctx, AgentRef(slug=query.agent))
    context_id = _uuid(query.context_id, "contextId")
    before = _uuid(query.page_token, "pageToken")
    rows, total = await repo.list_tasks(ctx.session, ctx.auth.org_id, agent.id, context_id=context_id,
                                        state=query.state, before=before, limit=query.page_size + 1)
    more, rows = len(rows) > query.page_size, rows[:query.page_size]
    return A2aTaskPage(tasks=[to_task(t, r, history_length=query.history_length,
                                      artifacts=query.include_artifacts).task for t, r in rows],
                       next_page_token=str(rows[-1][0].id) if more else "", page_size=query.page_size,
                       total_size=total)


async def steps(ctx: WorkContext, query: A2aStepsQuery) -> RunSteps:
    require(ctx.auth, "a2a", "read")
    task, run = await _task(ctx, query.agent, query.id)
    if run is None:  # rejected, or answered at once (AP2): no run, no steps
        raise A2aTaskTerminal(f"task {task.id} ended without a run: it has no steps", {"taskId": str(task.id)})
    rows = await runs_repo.steps_of(ctx.session, ctx.auth.org_id, run.id, after_seq=query.after_seq, limit=query.limit)
    return RunSteps(run=runs.to_run(run), steps=[to_step(r) for r in rows])


async def cancel(ctx: WorkContext, target: A2aTaskTarget) -> A2aTask:
    """Stop the task's run (here or on whichever replica runs it: its lease goes with the run's end)."""
    require(ctx.auth, "a2a", "send")
    error = {"code": "canceled", "message": "the task was canceled by its client"}
    async with ctx.transaction() as tx:
        task, run = await _task(tx, target.agent, target.id, for_update=True)
        state = state_of_task(task, run)
        if state in FINAL:
            raise A2aTaskNotCancelable(f"task {task.id} is {state}", {"taskId": str(task.id), "state": state})
        stopped = await runs_repo.finish_run(tx.session, run.org_id, run.id, {"status": "failed", "error": error,
                                                                             "waiting": None})
        if stopped is None:  # the run ended meanwhile
            raise A2aTaskNotCancelable(f"task {task.id} has ended", {"taskId": str(task.id)})
        await repo.update_task(tx.session, task.org_id, task.id, state=CANCELED)
        await tx.emit(EventType.TASK_EVENT, target_id=task.agent_id, metadata=a2a_ontology.task_metadata(
            task, run, "canceled"))
        task, run = dataclasses.replace(task, state=CANCELED), stopped
    await _stop_locally(ctx, run, error)
    return to_task(task, run, history_length=target.history_length)


async def _stop_locally(ctx: WorkContext, run: RunRow, error: dict[str, Any]) -> None:
    """Cancel this replica's work on the run, give its unused inference back, end its step stream."""
    running = state_of(ctx.runtime).running.get(run.id)
    if running is not None and not running.done():
        running.cancel()
    await inference.settle(_native(ctx), run, run.iterations)
    async with ctx.transaction() as tx:
        last = await runs_repo.steps_of(tx.session, run.org_id, run.id)
    try:
        await StepLog(ctx.runtime, run.org_id, run.id, next_seq=(last[-1].seq + 1) if last else 1).add(
            StepKind.RUN_ERROR, run.iterations, data={"status": "failed", "error": error})
    except Exception:  # another replica wrote the next step first: its stream ends on the run's state instead
        log.warning("a2a: could not store the canceled step of run %s", run.id, exc_info=True)


async def set_push(ctx: WorkContext, payload: A2aPushSet) -> A2aPushRecord:
    require(ctx.auth, "a2a", "send")
    task, _ = await _task(ctx, payload.agent, payload.task_id)
    return A2aPushRecord(config=await a2a_push.put(ctx, task.id, payload.config))


async def get_push(ctx: WorkContext, target: A2aPushTarget) -> A2aPushRecord:
    require(ctx.auth, "a2a", "read")
    task, _ = await _task(ctx, target.agent, target.task_id)
    found = await repo.push_configs(ctx.session, ctx.auth.org_id, task.id, target.id)
    if not found:
        raise A2aTaskNotFound(f"no push config {target.id} of task {task.id}", {"taskId": str(task.id)})
    return A2aPushRecord(config=to_config(await a2a_push.opened(ctx.runtime, found[0])))


async def list_push(ctx: WorkContext, query: A2aPushQuery) -> A2aPushConfigs:
    require(ctx.auth, "a2a", "list")
    task, _ = await _task(ctx, query.agent, query.task_id)
    return A2aPushConfigs(configs=[to_config(await a2a_push.opened(ctx.runtime, r)) for r in
                                   await repo.push_configs(ctx.session, ctx.auth.org_id, task.id)])


async def delete_push(ctx: WorkContext, target: A2aPushTarget) -> bool:
    require(ctx.auth, "a2a", "send")
    task, _ = await _task(ctx, target.agent, target.task_id)
    return await repo.delete_push(ctx.session, ctx.auth.org_id, task.id, target.id)


async def card(ctx: WorkContext, query: A2aCardQuery) -> A2aAgentFacts:
    """What the public card says of a published agent: only an active, deployed agent has one."""
    public = ctx.runtime.background(query.org_id)
    async with public.transaction() as tx:
        agent = await agents_repo.get_agent(tx.session, query.org_id, slug=query.agent, agent_id=None)
        config = None
        if agent is not None and agent.status == "active":
            config = (await agents_repo.current_configs(tx.session, query.org_id, [agent.id])).get(
                (agent.id, "production"))
        if agent is None or config is None:
            raise AgentNotFound(f"no published agent {query.agent} here")
        prompts = await agents_repo.prompts_by_ids(tx.session, query.org_id, agent.prompts)
    return A2aAgentFacts(org_id=query.org_id, slug=agent.slug, name=agent.name,
                         description=agent.description or f"{agent.name}, an agent of ONE on a bus",
                         version=str(config.version), skills=_skills(agent.slug, config.config, prompts))


def _skills(slug: str, config: dict[str, Any], prompts: list[Any]) -> list[A2aSkill]:
    """One skill per tool and per prompt of the deployed config; a plain conversation when it has neither."""
    skills = [A2aSkill(id=f"tool:{name}", name=name, description=f"Uses the platform's `{name}` tool.",
                       tags=["tool", "builtin"]) for name in config.get("tools") or [] if name != "ap2_merchant"]
    skills += a2a_ap2.skills(config)
    skills += [A2aSkill(id=f"tool:{t['name']}", name=t["name"], description=t.get("description") or t["name"],
                        tags=["tool", "http"]) for t in config.get("http_tools") or []]
    skills += [A2aSkill(id=f"mcp:{s['name']}", name=s["name"], description=f"The tools of MCP server {s['name']}.",
                        tags=["tool", "mcp"]) for s in config.get("mcp_servers") or []]
    skills += [A2aSkill(id=f"prompt:{p.name}", name=p.name, description=p.description or f"The {p.step} step.",
                        tags=["prompt", p.step, *p.tags]) for p in prompts if p.status == "active"]
    return skills or [A2aSkill(id=f"{slug}:chat", name="Conversation", description="Answers messages in a "
                               "conversation (contextId), with the organization's knowledge.", tags=["chat"])]
