"""A run from its first step to its last: build the context, run the loop, finish, or resume after a crash.

`execute` is the body of the task a replica runs a run in, for a new run or one it took over
(`resume=True`): a resumed run starts from its stored steps. A call the crashed replica started
but whose result was never stored is not made again (its effect may have happened): the model is
told its outcome is unknown. A run always ends `completed` or `failed` with its steps kept; only a
replica stopping (cancellation) leaves it `running`, with its lease released for another to resume.
A run may also stop to wait for its caller (`park`: run_waiting.py), `waiting` with no lease; the caller's reply
wakes it and it goes on from its stored steps like a resumed run (`woken`: not counted as a takeover).
A run started for an A2A task (`a2a_ontology.TASK_KEY` in its request) also ends that task with a `task_event`
(completed, failed, input_required, auth_required; `protocol: a2a`) in the transaction that ends or parks it.
"""

import asyncio
import logging
import time
from typing import Any
from uuid import UUID

from services.agents import (
    a2a_ontology,
    inference,
    keys,
    repository as agents_repo,
    repository_conversations as conversations,
    repository_runs as repo,
)
from services.agents.loop import Progress, run_loop, tool_result_text
from services.agents.providers.base import ChatMessage, ToolCall, Usage
from services.agents.rows import RunRow, StepRow
from services.agents.run_context import build_context, dump_messages, load_messages
from services.agents.run_waiting import Parked
from services.agents.run_work import RunWork, run_context
from services.agents.service_conversations import embed_later
from services.agents.state import of as state_of
from services.agents.steps import StepLog
from shared.contracts.agents import Citation, IterationLimit, RunNotFound, StepKind
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Internal, OneError
from shared.kernel.events import EventPayload
from shared.kernel.ontology import EventType
from shared.runtime.outbox import OutboxMessage
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


async def execute(runtime: ServiceRuntime, org_id: UUID, run_id: UUID, *, resume: bool = False,
                  woken: bool = False, fresh: RunWork | None = None) -> RunRow:
    """`fresh`: a run just started, with the rows its start stored (nothing to read again)."""
    state = state_of(runtime)
    state.running[run_id] = asyncio.current_task()
    try:
        work, stored = (fresh, []) if fresh is not None else await _load(runtime, org_id, run_id)
        if work.run.status != "running":
            return work.run
        progress, citations = Progress(messages=[]), []
        try:
            if resume:
                progress, citations = await _restore(work, stored, woken=woken)
            else:
                progress, citations = await _start(work)
            if progress.answer is None:
                progress = await run_loop(work, progress)
            return await finish(work, progress, citations)
        except Parked as parked:
            return await park(work, progress, citations, parked)
        except OneError as error:
            return await finish(work, progress, citations, error)
        except Exception as error:
            log.exception("run %s failed unexpectedly", run_id)
            return await finish(work, progress, citations,
                                Internal(f"the run failed unexpectedly: {type(error).__name__}"))
        finally:
            await work.mcp.close()
    finally:
        state.running.pop(run_id, None)


async def _load(runtime: ServiceRuntime, org_id: UUID, run_id: UUID) -> tuple[RunWork, list[StepRow]]:
    async with runtime.db.transaction(org_id) as session:
        run = await repo.get_run(session, org_id, run_id)
        if run is None:
            raise RunNotFound(f"no run {run_id}")
        agent = await agents_repo.get_agent(session, org_id, agent_id=run.agent_id)
        config = await agents_repo.config_version(session, org_id, run.agent_id, run.environment, run.config_version)
        stored = await repo.steps_of(session, org_id, run_id)
    steps = StepLog(runtime, org_id, run_id, next_seq=(stored[-1].seq + 1) if stored else 1)
    opened = await keys.open_config(runtime, org_id, run.agent_id, config.config)
    return RunWork(runtime, run_context(runtime, run), run, agent, opened, steps), stored


def context_steps(run: RunRow, config: dict[str, Any], messages: list[ChatMessage], citations: list[Citation],
                  retrieval_error: str | None) -> list[tuple[StepKind, int, dict[str, Any]]]:
    """A run's first steps: the context it starts from (what a resumed run replays) and what retrieval found."""
    return [
        (StepKind.RUN_STARTED, 0, {"data": {"messages": dump_messages(messages), "model": config["model"],
                                            "environment": run.environment, "depth": run.depth,
                                            "conversation_id": str(run.conversation_id)}}),
        (StepKind.RETRIEVAL, 0, {"data": {"citations": [c.model_dump(mode="json") for c in citations],
                                          "error": retrieval_error}}),
    ]


async def _start(work: RunWork) -> tuple[Progress, list[Citation]]:
    if work.context is not None:  # built and stored with the run (service_runs.start_run)
        messages, citations = work.context
        return Progress(messages=messages, context_len=len(messages)), citations
    provider, _ = work.model()
    message = work.run.request.get("message", "")
    messages, citations, retrieval_error = await build_context(
        work.ctx, work.run, work.agent, work.config, message, provider.supports_tools, work.preread)
    # stored while the model is asked (a crash before leaves a run that starts over)
    work.steps.add_later(context_steps(work.run, work.config, messages, citations, retrieval_error))
    return Progress(messages=messages, context_len=len(messages)), citations


async def _restore(work: RunWork, stored: list[StepRow], *, woken: bool = False) -> tuple[Progress, list[Citation]]:
    """The loop's progress rebuilt from the stored steps; calls without a stored result get an 'unknown' one."""
    by_kind = [(s.kind, s.iteration, s.body) for s in stored]
    started = next((b for k, _, b in by_kind if k == StepKind.RUN_STARTED), None)
    if started is None:  # it died before its first step: start over, nothing was done
        return await _start(work)
    messages = load_messages(started["data"]["messages"])
    progress = Progress(messages=messages, context_len=len(messages))
    citations = [Citation.model_validate(c) for b in (b for k, _, b in by_kind if k == StepKind.RETRIEVAL)
                 for c in (b.get("data") or {}).get("citations") or []]
    missing: list[tuple[StepKind, int, dict[str, Any]]] = []
    for iteration in sorted({i for k, i, _ in by_kind if k == StepKind.MODEL_CALL}):
        steps = [(k, b) for k, i, b in by_kind if i == iteration]
        usage = next(b["data"] for k, b in steps if k == StepKind.MODEL_CALL)
        progress.usage = Usage(progress.usage.input_tokens + usage.get("input_tokens", 0),
                               progress.usage.output_tokens + usage.get("output_tokens", 0))
        progress.model, progress.iteration = usage.get("model") or progress.model, iteration
        text = next((b.get("text") for k, b in steps if k == StepKind.TEXT), None)
        calls = tuple(ToolCall(b["tool_call_id"], b["tool_name"], b.get("arguments") or {})
                      for k, b in steps if k == StepKind.TOOL_CALL)
        messages.append(ChatMessage("assistant", text, calls))
        if not calls:
            progress.answer = text or ""
        results = {b["tool_call_id"]: b for k, b in steps if k == StepKind.TOOL_RESULT}
        for call in calls:
            result = results.get(call.id)
            if result is None:
                unknown = {"code": "interrupted", "message": "the run was interrupted while this call ran: its outcome "
                                                            "is unknown; check before doing it again"}
                missing.append((StepKind.TOOL_RESULT, iteration, {"tool_call_id": call.id, "tool_name": call.name,
                                                                  "result": unknown, "is_error": True}))
                result = {"result": unknown, "is_error": True}
            messages.append(ChatMessage("tool", tool_result_text(work, result.get("result"), result.get("is_error",
                                        False)), tool_call_id=call.id, name=call.name))
    await work.steps.add_many([(StepKind.RESUMED, progress.iteration, {"data": {
        "replica": work.state.replica, **({"reason": "caller_replied"} if woken else {})}}), *missing])
    if woken:
        return progress, citations
    async with work.runtime.db.transaction(work.run.org_id) as session:
        await repo.update_run(session, work.run.org_id, work.run.id, {"resumed": work.run.resumed + 1})
    return progress, citations


def _cost(work: RunWork, usage: Usage) -> float:
    prices = work.runtime.settings.agents_model_prices.get(work.config["model"])
    return round((usage.input_tokens * prices[0] + usage.output_tokens * prices[1]) / 1e6, 8) if prices else 0.0


def _conversation_messages(work: RunWork, progress: Progress) -> list[dict[str, Any]]:
    produced = progress.messages[progress.context_len:]
    return [{
        "role": m.role, "author_kind": "agent", "author_id": work.agent.id, "content": m.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls],
        "tool_call_id": m.tool_call_id, "run_id": work.run.id, "step": work.run.request.get("step"),
    } for m in produced]


async def finish(work: RunWork, progress: Progress, citations: list[Citation], error: OneError | None = None) -> RunRow:
    if error is None and progress.capped:
        error = IterationLimit(f"the model still asked for tools after {progress.iteration} iterations")
    run, failed = work.run, error is not None
    usage = progress.usage
    values = {
        "status": "failed" if failed else "completed", "answer": progress.answer, "iterations": progress.iteration,
        "model": progress.model or run.model, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
        "cost": _cost(work, usage), "citations": [c.model_dump(mode="json") for c in citations],
        "latency_ms": round((time.time() - run.created_at.timestamp()) * 1000),
        "error": {"code": error.code, "message": error.message} if failed else None,
    }
    metadata = {"runId": str(run.id), "agentSlug": run.agent_slug, "model": values["model"],
                "environment": run.environment, "iterations": progress.iteration, "inputTokens": usage.input_tokens,
                "outputTokens": usage.output_tokens, "cost": values["cost"], "latencyMs": values["latency_ms"],
                "conversationId": str(run.conversation_id), "depth": run.depth}
    ctx = work.ctx
    await work.steps.settled()  # the steps stored in the background so far (a failure among them raises here)
    async with ctx.transaction() as tx:
        finished = await repo.finish_run(tx.session, run.org_id, run.id, values)
        if finished is None:  # finished meanwhile (another replica, or the sweeper failed it)
            return await repo.get_run(tx.session, run.org_id, run.id)
        last = await work.steps.stage(tx.session, [*progress.unstored, (
            StepKind.RUN_ERROR if failed else StepKind.RUN_FINISHED, progress.iteration, {
                "text": progress.answer, "data": {"status": finished.status, "model": finished.model,
                                                  **({"error": values["error"]} if failed else {})}})])
        added = await conversations.append_messages(tx.session, run.org_id, run.conversation_id,
                                                    _conversation_messages(work, progress)) if progress.context_len else []
        ended = (EventType.AGENT_FAILED, EventPayload(target_id=run.agent_id, target_type=work.agent.type,
                                                      metadata={**metadata, "error": values["error"]})) if failed else (
            EventType.AGENT_COMPLETED, EventPayload(target_id=run.agent_id, target_type=work.agent.type,
                                                    metadata=metadata))
        await ctx.runtime.outbox.add_many(tx.session, tx.event_messages([ended]) + _task_ended(
            tx, finished, "failed" if failed else "completed", values["error"]))
    # this replica finished it: nobody else gives back
    await asyncio.gather(inference.settle(ctx, run, progress.iteration), work.steps.publish(last))
    embed_later(ctx, added)
    return finished


def _task_ended(tx: Any, run: RunRow, action: str, detail: dict[str, Any] | None = None) -> list[OutboxMessage]:
    """The A2A task this run does (if any) ended or stopped to wait: its `task_event`, tagged `a2a`, to stage in
    `tx` (with the run's own event, in one statement)."""
    metadata = a2a_ontology.run_task_metadata(run, action)
    if metadata is None:
        return []
    return tx.event_messages([(EventType.TASK_EVENT, EventPayload(
        target_id=run.agent_id, metadata={**metadata, **({"detail": detail} if detail else {})}))],
        protocol=Protocol.A2A)


async def park(work: RunWork, progress: Progress, citations: list[Citation], parked: Parked) -> RunRow:
    """The run waits for its caller (run_waiting.py): what the completion did is stored, the run `waiting` without a
    lease, its unused inference given back (what follows is paid unit by unit), its stream ended."""
    run, usage, waiting = work.run, progress.usage, parked.waiting()
    others = parked.results()
    if others:
        await work.steps.add_many([
            (StepKind.TOOL_RESULT, progress.iteration, {"tool_call_id": c.id, "tool_name": c.name, "result": r,
                                                        "is_error": e}) for c, r, e in others])
    reserved = inference.reserved_of(run)
    request = run.request if reserved is None else {**run.request,
                                                    inference.RESERVED: min(reserved, progress.iteration)}
    values = {"iterations": progress.iteration, "model": progress.model or run.model, "request": request,
              "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "cost": _cost(work, usage),
              "citations": [c.model_dump(mode="json") for c in citations], "waiting": waiting}
    async with work.ctx.transaction() as tx:
        parked_run = await repo.park_run(tx.session, run.org_id, run.id, values)
        if parked_run is None:  # finished meanwhile (a cancel, the sweeper)
            return await repo.get_run(tx.session, run.org_id, run.id)
        await work.runtime.outbox.add_many(tx.session, _task_ended(
            tx, parked_run, f"{waiting['kind']}_required", {"message": waiting["message"][:500]}))
    await inference.settle(work.ctx, run, progress.iteration)
    await work.steps.add(StepKind.RUN_FINISHED, progress.iteration, data={"status": "waiting", "waiting": waiting})
    return parked_run
