"""Starting runs (`agents.chat`, delegation) and reading them: runs, their steps, what they cost.

A chat stores the person's message and the run (with its lease) in one transaction, then the run goes
on in a task of this replica. With `wait` the reply is the finished run; without, the caller follows
the run's steps on its subject. The run's inference units are reserved before anything is stored
(inference.py), so an org over its quota is refused with `quota_exceeded` and nothing else happens; if
starting the run fails after that, the reservation is given back.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from services.agents import (
    inference,
    repository as agents_repo,
    repository_conversations as conversations,
    repository_runs as repo,
)
from services.agents.rows import AgentRow, ConfigRow, ConversationRow, RunRow
from services.agents.run_lifecycle import execute
from services.agents.run_work import RunWork
from services.agents.service_agents import load_agent
from services.agents.service_conversations import (
    check_member,
    embed_later,
    load_conversation,
    open_conversation,
    user_message,
)
from services.agents.state import of as state_of
from services.agents.steps import to_step
from shared.contracts.agents import (
    AgentArchived,
    AgentRef,
    ChatReply,
    ChatRequest,
    ConversationClosed,
    ConversationCreate,
    ExecutionPage,
    ExecutionQuery,
    ExecutionStats,
    ExecutionStatsQuery,
    ExecutionTotals,
    NotDeployed,
    Run,
    RunNotFound,
    RunPage,
    RunQuery,
    RunSteps,
    RunStepsQuery,
    step_subject,
)
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


def to_run(row: RunRow) -> Run:
    return Run.model_validate({
        **{f: getattr(row, f) for f in ("id", "agent_id", "agent_slug", "conversation_id", "environment",
                                        "config_version", "status", "model", "iterations", "answer", "error",
                                        "citations", "cost", "latency_ms", "parent_run_id", "depth", "resumed",
                                        "actor_id", "created_at", "finished_at")},
        "usage": {"input_tokens": row.input_tokens, "output_tokens": row.output_tokens},
    })


async def current_config(ctx: WorkContext, agent: AgentRow, environment: str) -> ConfigRow:
    if agent.status == "archived":
        raise AgentArchived(f"agent {agent.slug} is archived")
    config = (await agents_repo.current_configs(ctx.session, ctx.auth.org_id, [agent.id])).get((agent.id, environment))
    if config is None:
        raise NotDeployed(f"agent {agent.slug} has no {environment} config: deploy it first",
                          {"environment": environment})
    return config


async def start_run(ctx: WorkContext, agent: AgentRow, config: ConfigRow, conversation_id: UUID,
                    request: dict[str, Any], user: dict[str, Any] | None, parent: RunRow | None = None) -> RunRow:
    """Store the person's message, the run and its lease, and `agent_executed`, in one transaction."""
    auth = ctx.auth
    state = state_of(ctx.runtime)
    async with ctx.transaction() as tx:
        await conversations.add_participant(tx.session, auth.org_id, conversation_id, "agent", agent.id)
        added = await conversations.append_messages(tx.session, auth.org_id, conversation_id, [user]) if user else []
        run = await repo.insert_run(tx.session, {
            "id": uuid7(), "org_id": auth.org_id, "agent_id": agent.id,
            "agent_slug": agent.slug, "conversation_id": conversation_id, "environment": config.environment,
            "config_version": config.version, "status": "running", "model": config.config["model"],
            "parent_run_id": parent.id if parent else None, "depth": parent.depth + 1 if parent else 0,
            "chain": [*(parent.chain if parent else []), agent.id], "actor_id": auth.actor_id,
            "auth": {"role": auth.role, "permissions": list(auth.permissions), "scopes": list(auth.scopes),
                     "protocol": ctx.envelope.protocol.value},
            "request": request,
        }, state.replica, ctx.runtime.settings.agents_lease_seconds)
        await tx.emit(EventType.AGENT_EXECUTED, target_id=agent.id, target_type=agent.type, metadata={
            "runId": str(run.id), "agentSlug": agent.slug, "model": run.model, "environment": run.environment,
            "conversationId": str(conversation_id), "depth": run.depth,
            **({"parentRunId": str(parent.id)} if parent else {})})
    embed_later(ctx, added)
    return run


def run_in_task(ctx: WorkContext, run: RunRow) -> "asyncio.Task[RunRow]":
    state = state_of(ctx.runtime)
    return state.spawn(execute(ctx.runtime, run.org_id, run.id), name=f"agents-run-{run.id}")


@asynccontextmanager
async def reservation(ctx: WorkContext, agent: AgentRow, config: ConfigRow) -> AsyncIterator[dict[str, Any]]:
    """The run's inference units (`request` entries to store with it), given back if the run is not started."""
    reserved = await inference.reserve(ctx, agent.slug, inference.iteration_limit(config.config))
    try:
        yield {inference.RESERVED: reserved}
    except BaseException:
        if reserved:
            await inference.give_back(ctx, ctx.auth.org_id, reserved)
        raise


async def _conversation_for(ctx: WorkContext, request: ChatRequest) -> ConversationRow | None:
    if request.thread_id is not None:
        row = await load_conversation(ctx, request.thread_id)
    elif request.external_thread_id is not None:
        row = await conversations.get_conversation(ctx.session, ctx.auth.org_id,
                                                   external_thread_id=request.external_thread_id)
    else:
        return None
    if row is not None:
        await check_member(ctx, row)
    if row is not None and row.status != "active":
        raise ConversationClosed(f"the conversation is {row.status}")
    return row


async def chat(ctx: WorkContext, request: ChatRequest,
               started: Callable[[RunRow], Awaitable[None]] | None = None) -> ChatReply:
    """`started` is told of the run as soon as it is stored and running (the A2A task records itself then)."""
    require(ctx.auth, "agents", "run")
    async with ctx.transaction() as tx:
        agent = await load_agent(tx, request)
        config = await current_config(tx, agent, request.environment.value)
        conversation = await _conversation_for(tx, request)
    async with reservation(ctx, agent, config) as reserved:
        if conversation is None:
            title = request.message[:80].strip() or "Conversation"
            conversation = await open_conversation(ctx, ConversationCreate(
                title=title, external_thread_id=request.external_thread_id), [agent.id])
        run = await start_run(ctx, agent, config, conversation.id, {
            "message": request.message, "variables": request.variables,
            "step": request.step.value if request.step else None, **reserved,
        }, user_message(request, ctx.auth.actor_id))
    task = run_in_task(ctx, run)
    if started is not None:
        await started(run)
    if request.wait:
        run = await _finished(ctx, task, run)
    return ChatReply(run=to_run(run), conversation_id=conversation.id, step_subject=step_subject(run.org_id, run.id))


async def _finished(ctx: WorkContext, task: "asyncio.Task[RunRow]", run: RunRow) -> RunRow:
    """The run once its task ends; if this replica stopped working on it (another took its lease over), the run
    as it stands, still `running`: the caller follows it on its step subject."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not task.cancelled() or (current is not None and current.cancelling()):
            raise
    async with ctx.transaction() as tx:
        return await repo.get_run(tx.session, run.org_id, run.id) or run


async def start_child(work: RunWork, agent: AgentRow, task: str) -> RunRow:
    """A delegated run: the parent's caller and environment, a conversation of its own; run to its end."""
    ctx = work.ctx
    async with ctx.transaction() as tx:
        config = await current_config(tx, agent, work.run.environment)
    async with reservation(ctx, agent, config) as reserved:
        conversation = await open_conversation(ctx, ConversationCreate(
            title=f"Delegated by {work.agent.slug}"[:200]), [agent.id, work.agent.id])
        child = await start_run(ctx, agent, config, conversation.id,
                                {"message": task, "delegated_by": work.agent.slug, **reserved},
                                {"role": "user", "author_kind": "agent", "author_id": work.agent.id, "content": task},
                                parent=work.run)
    return await _finished(ctx, run_in_task(ctx, child), child)


async def get_run(ctx: WorkContext, run_id: UUID) -> Run:
    require(ctx.auth, "agents", "read")
    return to_run(await _run(ctx, run_id))


async def _run(ctx: WorkContext, run_id: UUID) -> RunRow:
    row = await repo.get_run(ctx.session, ctx.auth.org_id, run_id)
    if row is None:
        raise RunNotFound(f"no run {run_id} in this organization")
    return row


async def list_runs(ctx: WorkContext, query: RunQuery, *, finished_only: bool = False) -> list[RunRow]:
    require(ctx.auth, "agents", "list")
    agent_id = (await load_agent(ctx, AgentRef(slug=query.agent))).id if query.agent else None
    return await repo.list_runs(ctx.session, ctx.auth.org_id, agent_id=agent_id, finished_only=finished_only,
                                conversation_id=getattr(query, "conversation_id", None),
                                status=getattr(query, "status", None), cursor=query.cursor, limit=query.limit)


async def run_page(ctx: WorkContext, query: RunQuery) -> RunPage:
    rows = await list_runs(ctx, query)
    return RunPage(runs=[to_run(r) for r in rows], next_cursor=rows[-1].id if len(rows) == query.limit else None)


async def run_steps(ctx: WorkContext, query: RunStepsQuery) -> RunSteps:
    require(ctx.auth, "agents", "read")
    run = await _run(ctx, query.run_id)
    rows = await repo.steps_of(ctx.session, ctx.auth.org_id, run.id, after_seq=query.after_seq, limit=query.limit)
    return RunSteps(run=to_run(run), steps=[to_step(r) for r in rows])


async def execution_page(ctx: WorkContext, query: ExecutionQuery) -> ExecutionPage:
    rows = await list_runs(ctx, RunQuery(agent=query.agent, cursor=query.cursor, limit=query.limit),
                           finished_only=True)
    return ExecutionPage(executions=[{
        "run_id": r.id, "agent_id": r.agent_id, "model": r.model, "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens, "latency_ms": r.latency_ms or 0, "cost": r.cost, "status": r.status,
        "created_at": r.created_at} for r in rows], next_cursor=rows[-1].id if len(rows) == query.limit else None)


async def execution_stats(ctx: WorkContext, query: ExecutionStatsQuery) -> ExecutionStats:
    require(ctx.auth, "agents", "read")
    since = datetime.now(UTC) - timedelta(days=query.since_days) if query.since_days else None

    async def totals(group: str | None) -> dict[str, ExecutionTotals]:
        rows = await repo.execution_totals(ctx.session, ctx.auth.org_id, since, group)
        return {str(r.key): ExecutionTotals(runs=r.runs, failed=r.failed, input_tokens=r.input_tokens,
                                            output_tokens=r.output_tokens, cost=float(r.cost),
                                            latency_ms_avg=float(r.latency_ms_avg)) for r in rows}

    overall = await totals(None)
    return ExecutionStats(total=overall.get("all", ExecutionTotals()), by_model=await totals("model"),
                          by_agent=await totals("agent_slug"))
