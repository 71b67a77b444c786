"""Starting runs (`agents.chat`, delegation) and reading them: runs, their steps, what they cost.

A chat stores the person's message and the run (with its lease) in one transaction, with the conversation
when the chat opens one (its graph thing is made first), what the caller stores with the run (the A2A task),
and the reads of the run's context, then the run goes on in a task of this replica from those rows, reading
none of them again. With `wait` the reply is the finished run; without, the caller follows
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
    keys,
    repository as agents_repo,
    repository_conversations as conversations,
    repository_runs as repo,
)
from services.agents.rows import AgentRow, ConfigRow, ConversationRow, RunRow
from services.agents.run_context import PreRead, build_context, read_context, retrieves
from services.agents.run_lifecycle import context_steps, execute
from services.agents.run_work import RunWork, run_context
from services.agents.service_agents import load_agent
from services.agents.service_conversations import (
    NewConversation,
    check_member,
    conversation_thing,
    embed_later,
    insert_conversation,
    load_conversation,
    user_message,
)
from services.agents.state import of as state_of
from services.agents.steps import StepLog, to_step
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
    RunStep,
    RunSteps,
    RunStepsQuery,
    step_subject,
)
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext
from shared.runtime.outbox import OutboxMessage

Started = Callable[[WorkContext, RunRow], Awaitable[list[OutboxMessage]]]
"""What a caller stores with a run, in the transaction that starts it (the transaction, the run); it answers the
events it stages (`WorkContext.event_messages`), written with the run's own in one statement."""


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


async def start_run(ctx: WorkContext, agent: AgentRow, config: ConfigRow, conversation: UUID | NewConversation,
                    request: dict[str, Any], user: dict[str, Any] | None, parent: RunRow | None = None,
                    started: Started | None = None) -> RunWork:
    """Store the conversation (when it is new), the person's message, the run and its lease, and `agent_executed`
    (and what `started` stores with them), and read what the run's context needs from the database
    (run_context.read_context), in one transaction: the run's work, ready to go on in a task (`run_in_task`)
    without reading any of it again."""
    auth, runtime = ctx.auth, ctx.runtime
    state = state_of(runtime)
    async with ctx.transaction() as tx:
        new = False
        if isinstance(conversation, NewConversation):
            conversation_id = (await insert_conversation(tx, conversation)).id
            new = conversation_id == conversation.thing_id  # not the one a concurrent request opened first
        else:
            conversation_id = conversation
        if not new:  # a new conversation has its agents already
            await conversations.join(tx.session, auth.org_id, conversation_id, [("agent", agent.id)])
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
        events = tx.event_messages([(EventType.AGENT_EXECUTED, EventPayload(
            target_id=agent.id, target_type=agent.type, metadata={
                "runId": str(run.id), "agentSlug": agent.slug, "model": run.model, "environment": run.environment,
                "conversationId": str(conversation_id), "depth": run.depth,
                **({"parentRunId": str(parent.id)} if parent else {})}))])
        if started is not None:
            events += await started(tx, run)
        await runtime.outbox.add_many(tx.session, events)
        preread = await read_context(tx, run, agent, history=added if new else None)
        steps = StepLog(runtime, run.org_id, run.id)
        context, first = await _context_without_retrieval(tx, run, agent, config, preread, steps)
    await steps.publish(first)
    embed_later(ctx, added)
    opened = await keys.open_config(runtime, run.org_id, agent.id, config.config)
    return RunWork(runtime, run_context(runtime, run), run, agent, opened, steps, preread=preread, context=context)


async def _context_without_retrieval(tx: WorkContext, run: RunRow, agent: AgentRow, config: ConfigRow,
                                     preread: PreRead, steps: StepLog) -> tuple[Any, list[RunStep]]:
    """A run that asks the knowledge service nothing has its whole context now: it is stored with the run (its
    first steps, no transaction of their own). A run that retrieves builds it in its task (None, nothing stored)."""
    if retrieves(config.config):
        return None, []
    try:
        provider, _ = state_of(tx.runtime).providers.resolve(config.config["model"])
    except Exception:  # the run's own task reports a model it cannot use
        return None, []
    messages, citations, error = await build_context(tx, run, agent, config.config, run.request.get("message", ""),
                                                     provider.supports_tools, preread)
    stored = await steps.stage(tx.session, context_steps(run, config.config, messages, citations, error))
    return (messages, citations), stored


def run_in_task(ctx: WorkContext, work: RunWork) -> "asyncio.Task[RunRow]":
    """A run just started (`start_run`) in a task of this replica."""
    run = work.run
    return state_of(ctx.runtime).spawn(execute(ctx.runtime, run.org_id, run.id, fresh=work),
                                       name=f"agents-run-{run.id}")


@asynccontextmanager
async def reservation(ctx: WorkContext, agent: AgentRow, config: ConfigRow) -> AsyncIterator[dict[str, Any]]:
    """The run's inference units (`request` entries to store with it), given back if the run is not started."""
    reserved = await inference.reserve(ctx, agent.slug, inference.units_to_reserve(config.config))
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


async def chat(ctx: WorkContext, request: ChatRequest, started: Started | None = None, *,
               extra: dict[str, Any] | None = None) -> ChatReply:
    """`started` stores what goes with the run in the transaction that starts it (the A2A task records itself
    then); `extra` entries are stored in the run's request (the A2A task it does)."""
    run = await chat_run(ctx, request, started, extra=extra)
    return ChatReply(run=to_run(run), conversation_id=run.conversation_id,
                     step_subject=step_subject(run.org_id, run.id))


async def chat_run(ctx: WorkContext, request: ChatRequest, started: Started | None = None, *,
                   extra: dict[str, Any] | None = None) -> RunRow:
    """`chat`'s run: as it started, or as it ended with `wait`."""
    require(ctx.auth, "agents", "run")
    async with ctx.transaction() as tx:
        agent = await load_agent(tx, request)
        config = await current_config(tx, agent, request.environment.value)
        conversation = await _conversation_for(tx, request)
    async with reservation(ctx, agent, config) as reserved:
        if conversation is None:  # its thing now; its row with the run
            title = request.message[:80].strip() or "Conversation"
            target: UUID | NewConversation = await conversation_thing(ctx, ConversationCreate(
                title=title, external_thread_id=request.external_thread_id), [agent.id])
        else:
            target = conversation.id
        work = await start_run(ctx, agent, config, target, {
            "message": request.message, "variables": request.variables,
            "step": request.step.value if request.step else None, **reserved, **(extra or {}),
        }, user_message(request, ctx.auth.actor_id), started=started)
    run, task = work.run, run_in_task(ctx, work)
    return await _finished(ctx, task, run) if request.wait else run


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
        conversation = await conversation_thing(ctx, ConversationCreate(
            title=f"Delegated by {work.agent.slug}"[:200]), [agent.id, work.agent.id])
        child = await start_run(ctx, agent, config, conversation,
                                {"message": task, "delegated_by": work.agent.slug, **reserved},
                                {"role": "user", "author_kind": "agent", "author_id": work.agent.id, "content": task},
                                parent=work.run)
    return await _finished(ctx, run_in_task(ctx, child), child.run)


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
