"""A run's steps as AG-UI events (the `ag-ui-protocol` package's models): the gateway's fifth protocol.

`RunEvents` turns the agents service's `RunStep`s, in `seq` order, into the events an AG-UI client
expects: RUN_STARTED; per completion a TEXT_MESSAGE_START/CONTENT/END (streamed from the text
deltas when they were seen from the start, else the stored text at once) and TOOL_CALL_START/ARGS/END
for each call it asked for; TOOL_CALL_RESULT per result; RUN_FINISHED or RUN_ERROR. What AG-UI has no
event for (retrieval with its citations, a completion's model and tokens, a takeover by another
replica) goes out as CUSTOM events named `one.<kind>`. A message's id is the run's id and the `seq` of
the completion that wrote it, so the same message has the same id whether streamed live or replayed.
Each event is written by the package's `EventEncoder`, after an SSE `id:` line carrying the step's
`seq` (none on text deltas), so a client resumes after the last step it saw (`Last-Event-ID`).
"""

import json
from typing import Any

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder

from shared.contracts.agents import Run, RunStep, StepKind

ENCODER = EventEncoder()
CUSTOM_KINDS = (StepKind.RETRIEVAL, StepKind.MODEL_CALL, StepKind.RESUMED)


def encode(event: BaseEvent, seq: int | None = None) -> bytes:
    """One SSE message: the step's `seq` as its id (when it has one), the event as the AG-UI encoder writes it."""
    head = f"id: {seq}\n" if seq else ""  # seqs start at 1: 0 is a step made up from the run record
    return (head + ENCODER.encode(event)).encode()


class RunEvents:
    """The AG-UI events of one run's steps, fed in `seq` order (the caller drops repeats and fills gaps)."""

    def __init__(self, run: Run, *, started: bool = False) -> None:
        self.run_id, self.thread_id = str(run.id), str(run.conversation_id)
        self.parent_run_id = str(run.parent_run_id) if run.parent_run_id else None
        self.started = started  # RUN_STARTED already sent (a resumed stream does not repeat it)
        self.message_of: dict[int, str] = {}  # iteration -> the id of the message its completion writes
        self.open: tuple[str, str] | None = None  # the message being streamed from deltas: (id, text so far)
        self.usage: dict[str, TokenUsage] = {}  # per model, summed over the completions seen: reported only by a
        self.whole = not started  # stream that saw them all (one that resumed after a step did not)

    def message_id(self, seq: int) -> str:
        return f"{self.run_id}-{seq}"

    def delta(self, step: RunStep) -> list[bytes]:
        """A live text delta (published with the seq of the completion it belongs to); never repeated on resume."""
        if not step.text:
            return []
        out = self._start() if not self.started else []
        message_id = self.message_id(step.seq)
        if self.open is None or self.open[0] != message_id:
            out += self._close()
            out.append(encode(TextMessageStartEvent(message_id=message_id, role="assistant")))
            self.open = (message_id, "")
        self.open = (message_id, self.open[1] + step.text)
        out.append(encode(TextMessageContentEvent(message_id=message_id, delta=step.text)))
        return out

    def step(self, step: RunStep) -> list[bytes]:
        """The events of one stored step."""
        out = self._start() if not self.started and step.kind != StepKind.RUN_STARTED else []
        seq, kind = step.seq, step.kind
        if kind == StepKind.RUN_STARTED:
            out += self._start(seq)
        elif kind == StepKind.TEXT:
            out += self._text(step)
        elif kind == StepKind.TOOL_CALL:
            out += self._close()
            call_id = step.tool_call_id or self.message_id(seq)
            out += [encode(ToolCallStartEvent(tool_call_id=call_id, tool_call_name=step.tool_name or "",
                                              parent_message_id=self.message_of.get(step.iteration)), seq),
                    encode(ToolCallArgsEvent(tool_call_id=call_id, delta=json.dumps(step.arguments or {})), seq),
                    encode(ToolCallEndEvent(tool_call_id=call_id), seq)]
        elif kind == StepKind.TOOL_RESULT:
            content = step.result if isinstance(step.result, str) else json.dumps(step.result, default=str)
            out.append(encode(ToolCallResultEvent(
                message_id=self.message_id(seq), tool_call_id=step.tool_call_id or "", content=content, role="tool",
                **({"metadata": {"isError": True}} if step.is_error else {})), seq))
        elif kind in CUSTOM_KINDS:
            out += self._custom(step)
        elif kind == StepKind.RUN_FINISHED:
            out += self._close()
            out.append(encode(RunFinishedEvent(
                thread_id=self.thread_id, run_id=self.run_id, usage=self._usage(),
                result={"answer": step.text, "model": step.data.get("model"), "status": step.data.get("status")}), seq))
        elif kind == StepKind.RUN_ERROR:
            out += self._close()
            error = step.data.get("error") or {}
            out.append(encode(RunErrorEvent(message=error.get("message") or "the run failed", code=error.get("code"),
                                            usage=self._usage()), seq))
        return out

    def end_of(self, run: Run) -> list[bytes]:
        """The terminal event from the run record, for a run that ended without a terminal step the stream saw."""
        if run.status == "completed":
            step = StepKind.RUN_FINISHED, {"model": run.model, "status": run.status}
        else:
            step = StepKind.RUN_ERROR, {"error": run.error or {"code": "failed", "message": "the run failed"}}
        return self.step(RunStep(run_id=run.id, seq=0, kind=step[0], text=run.answer, data=step[1],
                                 created_at=run.finished_at or run.created_at))

    def _usage(self) -> list[TokenUsage] | None:
        return (list(self.usage.values()) or None) if self.whole else None

    def _start(self, seq: int | None = None) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        return [encode(RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id,
                                       parent_run_id=self.parent_run_id), seq)]

    def _text(self, step: RunStep) -> list[bytes]:
        text = step.text or ""
        message_id = self.message_of.get(step.iteration, self.message_id(step.seq))
        if self.open is not None and self.open[0] == message_id:
            streamed = self.open[1]
            self.open = None
            rest = text[len(streamed):] if text.startswith(streamed) else ""
            content = [encode(TextMessageContentEvent(message_id=message_id, delta=rest), step.seq)] if rest else []
            return [*content, encode(TextMessageEndEvent(message_id=message_id), step.seq)]
        return [*self._close(),
                encode(TextMessageStartEvent(message_id=message_id, role="assistant"), step.seq),
                encode(TextMessageContentEvent(message_id=message_id, delta=text), step.seq),
                encode(TextMessageEndEvent(message_id=message_id), step.seq)]

    def _custom(self, step: RunStep) -> list[bytes]:
        data: dict[str, Any] = dict(step.data)
        if step.kind == StepKind.MODEL_CALL:
            self.message_of[step.iteration] = self.message_id(step.seq)
            model = str(data.get("model") or "")
            seen = self.usage.get(model) or TokenUsage(model=model, input_tokens=0, output_tokens=0)
            inputs, outputs = seen.input_tokens + int(data.get("input_tokens") or 0), \
                seen.output_tokens + int(data.get("output_tokens") or 0)
            self.usage[model] = TokenUsage(model=model, input_tokens=inputs, output_tokens=outputs,
                                           total_tokens=inputs + outputs)
        out = self._close() if step.kind == StepKind.RESUMED else []
        return [*out, encode(CustomEvent(name=f"one.{step.kind.value}", value={"iteration": step.iteration, **data}),
                             step.seq)]

    def _close(self) -> list[bytes]:
        """End the message streamed from deltas whose whole text never came (a takeover, a failure)."""
        if self.open is None:
            return []
        message_id, self.open = self.open[0], None
        return [encode(TextMessageEndEvent(message_id=message_id))]
