"""The tool loop: model → tool calls → results → model, at most `max_iterations` completions.

Each iteration is paid one unit of the org's inference quota (from the run's reservation, made when the run
started: no round trip, see inference.py; beyond it, one unit from tenancy), asks the model, stores the completion
and the calls it asked for, runs the calls one after the other (a delegation may be long, and the
order the model gave is the order effects happen), and stores their results. A tool that is refused
or fails is reported to the model as its result; only the model, the quota or the database can end
a run early. `Progress` is what the loop has done so far; a resumed run starts from it.

What is not on the model's path runs beside it: a next completion's quota unit that the reservation does
not cover is taken while a completion's calls are stored and run (a refusal still comes before the model is
asked again; only a run that fails in the middle of its calls may have taken one unit it did not use), and the
calls' results are stored while the model is asked again (before its text is published and before
its own steps are stored, so readers still get the steps in order and a crash meanwhile leaves
at worst calls whose results are unknown, which a resumed run reports and never repeats). The answering
completion's steps are stored with the run's end, in its transaction (a crash before asks the model again).
"""

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from services.agents.inference import iteration_limit
from services.agents.providers.base import ChatMessage, Completion, ToolCall, Usage
from services.agents.run_waiting import Parked
from services.agents.run_work import RunWork
from services.agents.tools import run_tool
from shared.contracts.agents import StepKind
from shared.kernel.errors import OneError


@dataclass
class Progress:
    messages: list[ChatMessage]
    context_len: int = 0  # the messages before the loop's own (the context it started from)
    iteration: int = 0  # completions done
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    answer: str | None = None
    capped: bool = False
    unstored: list[tuple[StepKind, int, dict[str, Any]]] = field(default_factory=list)
    """The last completion's steps, stored in the transaction that ends the run (run_lifecycle.finish)."""


def _add_usage(progress: Progress, completion: Completion) -> None:
    progress.usage = Usage(progress.usage.input_tokens + completion.usage.input_tokens,
                           progress.usage.output_tokens + completion.usage.output_tokens)
    progress.model = completion.model or progress.model


def tool_result_text(work: RunWork, result: Any, is_error: bool) -> str:
    text = json.dumps({"error": result} if is_error else result, default=str)
    limit = work.runtime.settings.agents_tool_result_chars
    return text if len(text) <= limit else text[:limit] + '..."(truncated)"'


class _Pending:
    """What the loop started and must see through: the next completion's quota unit, the last results' storing."""

    def __init__(self) -> None:
        self.unit: asyncio.Future[None] | None = None
        self.stored: asyncio.Future[Any] | None = None

    async def results_stored(self) -> None:
        if self.stored is not None:
            await self.stored

    async def settle(self, failed: bool) -> None:
        """A failed loop gives up the unit; the results of calls that were made are stored whatever happened."""
        if self.unit is not None and not self.unit.done() and failed:
            self.unit.cancel()
        await asyncio.gather(*(f for f in (self.unit, self.stored) if f is not None), return_exceptions=failed)


async def run_loop(work: RunWork, progress: Progress) -> Progress:
    pending = _Pending()
    try:
        progress = await _loop(work, progress, pending)
    except BaseException:
        await pending.settle(failed=True)
        raise
    await pending.settle(failed=False)
    return progress


async def _loop(work: RunWork, progress: Progress, pending: _Pending) -> Progress:
    provider, model = work.model()
    tools = await work.tool_specs() if provider.supports_tools else []
    limit = iteration_limit(work.config)
    paid = False  # the unit of the next completion is taken already
    while progress.iteration < limit:
        iteration = progress.iteration + 1
        if not paid:
            await work.consume_inference(iteration)
        started = time.perf_counter()

        async def stream(text: str, iteration: int = iteration) -> None:
            await pending.results_stored()  # a reader gets the last results before the text they led to
            await work.steps.delta(text, iteration)

        completion = await provider.complete(
            model, progress.messages, tools, temperature=float(work.config.get("temperature", 0.2)),
            max_tokens=int(work.config.get("max_tokens", 512)), on_text=stream)
        _add_usage(progress, completion)
        progress.iteration = iteration
        calls = completion.tool_calls
        paid = bool(calls) and iteration < limit
        if paid and not work.funded(iteration + 1):  # taken while this completion and its calls are stored and
            pending.unit = asyncio.ensure_future(work.consume_inference(iteration + 1))  # run; a refusal raises below
        steps = [
            (StepKind.MODEL_CALL, iteration, {"data": {
                "model": completion.model, "input_tokens": completion.usage.input_tokens,
                "output_tokens": completion.usage.output_tokens, "finish_reason": completion.finish_reason,
                "latency_ms": round((time.perf_counter() - started) * 1000)}}),
            *([(StepKind.TEXT, iteration, {"text": completion.text})] if completion.text else []),
            *[(StepKind.TOOL_CALL, iteration, {"tool_call_id": c.id, "tool_name": c.name, "arguments": c.arguments})
              for c in calls],
        ]
        progress.messages.append(ChatMessage("assistant", completion.text or None, calls))
        if not calls:  # the answer: its steps go with the run's end, in one transaction
            progress.answer, progress.unstored = completion.text, steps
            return progress
        await pending.results_stored()
        await work.steps.add_many(steps)
        results = await run_calls(work, calls)
        pending.stored = work.steps.add_later([  # stored while the model is asked again
            (StepKind.TOOL_RESULT, iteration, {"tool_call_id": c.id, "tool_name": c.name, "result": r, "is_error": e})
            for c, r, e in results
        ])
        progress.messages += [ChatMessage("tool", tool_result_text(work, r, e), tool_call_id=c.id, name=c.name)
                              for c, r, e in results]
        if pending.unit is not None:
            unit, pending.unit = pending.unit, None
            await unit
    progress.capped = True
    return progress


async def run_calls(work: RunWork, calls: tuple[ToolCall, ...]) -> list[tuple[ToolCall, Any, bool]]:
    """Run the calls in order: (call, result, is_error); a refused or failed call's error is its result. A call
    that makes the run wait for its caller (`Parked`) ends them: it carries the results of those before it, and
    the calls after it (not made)."""
    results = []
    for index, call in enumerate(calls):
        try:
            result, is_error = await run_tool(work, call), False
        except OneError as error:
            result, is_error = {"code": error.code, "message": error.message, **error.details}, True
        except Parked as parked:
            parked.before, parked.after = results, list(calls[index + 1:])
            raise
        results.append((call, result, is_error))
    return results
