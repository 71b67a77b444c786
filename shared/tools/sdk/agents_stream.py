"""A run followed as it happens, the same over the bus and over HTTP: `ChatEvent`s in order, no gap, no repeat.

Over the bus the reader subscribes to the run's step subject (for a chat not started yet, the org's step
subjects) BEFORE anything can be published, reads the stored steps (`agents.run.steps`), then takes the
live ones, dropping those it has (`seq`) and reading the store again when a live step skips a `seq`
(core NATS dropped one) or nothing came for a while (a run that ended meanwhile ends the stream). Text
deltas are only published, never stored: one is used only when every step before it came live, and the
stored `text` step then adds just what the deltas had not yet said. Over HTTP the gateway does the same
and sends AG-UI events (`routes_agui`); they are read back into the same `ChatEvent`s.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from shared.contracts.agents import RUN_GET, RUN_STEPS, Run, RunStatus, RunStep, StepKind
from shared.kernel.errors import OneError

ChatEventKind = Literal["started", "text", "tool_call", "tool_result", "finished", "failed"]
TERMINAL = (StepKind.RUN_FINISHED, StepKind.RUN_ERROR)
PAGE = 500
QUIET_SECONDS = 15.0
"""With no live step for this long, the store is read again (the run may have ended unseen)."""


@dataclass(frozen=True)
class ChatEvent:
    """One thing a run did, as a streamed chat shows it.

    `started`: the run began (`conversation_id` set). `text`: the next piece of the answer (`text`), in order;
    the pieces add up to the answer. `tool_call`: the model asked for `tool_name` with `arguments`.
    `tool_result`: what the tool answered (`result`, `is_error`). `finished`: the whole answer in `text`, the
    model that gave it in `model`. `failed`: `error` is `{code, message}`. The stream ends after the last two.
    """

    kind: ChatEventKind
    run_id: UUID
    text: str = ""
    tool_call_id: str | None = None
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None
    result: Any = None
    is_error: bool = False
    model: str | None = None
    error: dict[str, Any] | None = None
    conversation_id: UUID | None = None

    def raise_for_failure(self) -> None:
        """A `failed` event as the contract's typed error (the run's id in its details)."""
        if self.kind == "failed":
            error = self.error or {}
            raise OneError.from_payload({"code": error.get("code") or "run_failed", "family": "internal",
                                         "message": f"run {self.run_id} failed: {error.get('message') or 'no reason'}",
                                         "details": {"run_id": str(self.run_id)}})


# --- over the bus -----------------------------------------------------------


class StepFeed:
    """The live steps of a subject, queued from the moment of `open` until read."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.subscription: Any = None

    @classmethod
    async def open(cls, nc: Any, subject: str) -> "StepFeed":
        feed = cls()
        feed.subscription = await nc.subscribe(subject, cb=feed._received)
        await nc.flush()  # the server has the subscription: nothing published after this is missed
        return feed

    async def _received(self, msg: Any) -> None:
        self.queue.put_nowait(msg.data)

    async def close(self) -> None:
        if self.subscription is not None:
            subscription, self.subscription = self.subscription, None
            with contextlib.suppress(Exception):  # the connection is closing or closed: the subscription went with it
                await subscription.unsubscribe()


async def follow_steps(transport: Any, run: Run, feed: StepFeed, *, after: int = 0) -> AsyncIterator[RunStep]:
    """The run's steps after `after` in `seq` order, stored then live, each once, until its terminal step;
    text deltas where they can be trusted to be whole (see the module docstring). Closes `feed`."""
    last, live = after, set[int]()
    try:
        for step in await _stored(transport, run.id, last):
            yield step
            last = step.seq
            if step.kind in TERMINAL:
                return
        while True:
            try:
                raw: bytes | None = await asyncio.wait_for(feed.queue.get(), QUIET_SECONDS)
            except TimeoutError:
                raw = None
            step = RunStep.model_validate_json(raw) if raw is not None else None
            if step is not None and step.run_id != run.id:
                continue  # another run of the org (a chat listens to all of them until it knows its own)
            if step is not None and step.kind == StepKind.TEXT_DELTA:
                if step.seq == last + 1 and step.seq - 1 in live:
                    yield step
                continue
            if step is not None:
                live.add(step.seq)
                if step.seq <= last:
                    continue
            missed = [step] if step is not None and step.seq == last + 1 else await _stored(transport, run.id, last)
            for each in missed:
                yield each
                last = each.seq
                if each.kind in TERMINAL:
                    return
            if step is None and not missed:
                current: Run = await transport.request(RUN_GET, {"id": str(run.id)})
                if current.status != RunStatus.RUNNING:  # it ended without a terminal step this reader could read
                    yield _end_of(current)
                    return
    finally:
        await feed.close()


async def _stored(transport: Any, run_id: UUID, after: int) -> list[RunStep]:
    steps: list[RunStep] = []
    while True:
        page = await transport.request(RUN_STEPS, {"run_id": str(run_id), "after_seq": after, "limit": PAGE})
        steps += page.steps
        if len(page.steps) < PAGE:
            return steps
        after = page.steps[-1].seq


def _end_of(run: Run) -> RunStep:
    failed = run.status != RunStatus.COMPLETED
    data = {"model": run.model, "status": run.status.value,
            **({"error": run.error or {"code": "failed", "message": "the run failed"}} if failed else {})}
    return RunStep(run_id=run.id, seq=0, kind=StepKind.RUN_ERROR if failed else StepKind.RUN_FINISHED,
                   text=run.answer, data=data, created_at=run.finished_at or run.created_at)


@dataclass
class StepEvents:
    """`RunStep`s (in order, from `follow_steps`) as `ChatEvent`s."""

    run: Run
    streamed: dict[int, str] = field(default_factory=dict)  # iteration -> its text so far, from deltas

    def of(self, step: RunStep) -> list[ChatEvent]:
        run_id, kind = self.run.id, step.kind
        if kind == StepKind.RUN_STARTED:
            return [ChatEvent("started", run_id, conversation_id=self.run.conversation_id)]
        if kind == StepKind.TEXT_DELTA:
            self.streamed[step.iteration] = self.streamed.get(step.iteration, "") + (step.text or "")
            return [ChatEvent("text", run_id, text=step.text)] if step.text else []
        if kind == StepKind.TEXT:
            said, text = self.streamed.pop(step.iteration, ""), step.text or ""
            rest = text[len(said):] if text.startswith(said) else ""
            return [ChatEvent("text", run_id, text=rest)] if rest else []
        if kind == StepKind.RESUMED:
            self.streamed.clear()  # another replica asks the model again: its text comes anew
        if kind == StepKind.TOOL_CALL:
            return [ChatEvent("tool_call", run_id, tool_call_id=step.tool_call_id, tool_name=step.tool_name,
                              arguments=step.arguments or {})]
        if kind == StepKind.TOOL_RESULT:
            return [ChatEvent("tool_result", run_id, tool_call_id=step.tool_call_id, tool_name=step.tool_name,
                              result=step.result, is_error=step.is_error)]
        if kind == StepKind.RUN_FINISHED:
            return [ChatEvent("finished", run_id, text=step.text or "", model=step.data.get("model"))]
        if kind == StepKind.RUN_ERROR:
            return [ChatEvent("failed", run_id, model=step.data.get("model"), error=step.data.get("error") or {})]
        return []


# --- over HTTP (AG-UI) ------------------------------------------------------


@dataclass
class AguiEvents:
    """The gateway's AG-UI events (JSON objects, in order) as `ChatEvent`s."""

    run_id: UUID | None = None
    calls: dict[str, list[str]] = field(default_factory=dict)  # tool call id -> [name, arguments so far]
    names: dict[str, str] = field(default_factory=dict)  # tool call id -> name, for its result

    def of(self, event: dict[str, Any]) -> list[ChatEvent]:
        kind = event.get("type")
        if kind == "RUN_STARTED":
            self.run_id = UUID(event["runId"])
            return [ChatEvent("started", self.run_id, conversation_id=UUID(event["threadId"]))]
        run_id = self.run_id or UUID(int=0)
        if kind == "TEXT_MESSAGE_CONTENT":
            return [ChatEvent("text", run_id, text=event.get("delta") or "")] if event.get("delta") else []
        if kind == "TOOL_CALL_START":
            self.calls[event["toolCallId"]] = [event.get("toolCallName") or "", ""]
        elif kind == "TOOL_CALL_ARGS" and event.get("toolCallId") in self.calls:
            self.calls[event["toolCallId"]][1] += event.get("delta") or ""
        elif kind == "TOOL_CALL_END" and event.get("toolCallId") in self.calls:
            call_id = event["toolCallId"]
            name, arguments = self.calls.pop(call_id)
            self.names[call_id] = name
            return [ChatEvent("tool_call", run_id, tool_call_id=call_id, tool_name=name,
                              arguments=_json_or(arguments, {}))]
        elif kind == "TOOL_CALL_RESULT":
            call_id = event.get("toolCallId")
            return [ChatEvent("tool_result", run_id, tool_call_id=call_id, tool_name=self.names.get(call_id or ""),
                              result=_json_or(event.get("content") or "", event.get("content")),
                              is_error=bool((event.get("metadata") or {}).get("isError")))]
        elif kind == "RUN_FINISHED":
            result = event.get("result") or {}
            return [ChatEvent("finished", run_id, text=result.get("answer") or "", model=result.get("model"))]
        elif kind == "RUN_ERROR":
            return [ChatEvent("failed", run_id, error={"code": event.get("code"), "message": event.get("message")})]
        return []


def _json_or(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return default


async def agui_events(transport: Any, method: str, path: str, body: dict[str, Any] | None = None,
                      params: dict[str, Any] | None = None) -> AsyncIterator[ChatEvent]:
    """An AG-UI stream of the gateway as `ChatEvent`s, until its terminal event; a problem (before the stream,
    or as its `problem` event) is raised as its typed error."""
    import httpx

    from shared.tools.sdk.http import event_stream  # the transport's own SSE and problem reader

    events = AguiEvents()
    headers = {"Accept": "text/event-stream"}
    timeout = httpx.Timeout(transport.timeout, read=QUIET_SECONDS * 4)  # the gateway sends heartbeats meanwhile
    async with transport.http.stream(method, path, json=body, params=params, headers=headers,
                                     timeout=timeout) as response:
        async for data, _ in event_stream(response):
            for each in events.of(json.loads(data)):
                yield each
                if each.kind in ("finished", "failed"):
                    return
