"""A run that waits for its caller (A2A `input-required` / `auth-required`), and its waking by the caller's reply.

Two things park a run, both raised from a tool call as `Parked` (not a `OneError`, so the loop does not hand it to
the model as a tool result):
- `ask_user(question)`, a built-in tool: the model asks whoever started the run; it waits for `input`;
- a tool refused for want of credentials the caller must arrange (`AUTH_CODES`: an external A2A agent refusing our
  credentials, an x402 payment beyond the agent's budget): it waits for `auth`.
The run's lifecycle (run_lifecycle.park) stores what the completion did, marks the run `waiting` (no lease: no
replica works on it, no sweeper takes it), with `runs.waiting` saying what for, and ends its step stream with a
`run_finished` step whose `data.status` is `waiting`. `wake` (the caller's next message on the A2A task) stores the
reply as the waiting call's result, takes a lease and sets the run `running` in the caller's transaction; the run
then goes on from its stored steps (`execute(resume=True)`), in the same conversation.
"""

from typing import Any

from pydantic import Field

from services.agents import repository_runs as repo
from services.agents.providers.base import ToolCall
from services.agents.rows import RunRow
from services.agents.state import of as state_of
from shared.contracts.agents import StepKind
from shared.kernel.envelope import Payload
from shared.kernel.errors import OneError
from shared.runtime.context import WorkContext

ASK_USER = "ask_user"
INPUT, AUTH = "input", "auth"
AUTH_CODES = frozenset({"external_agent_auth_refused", "budget_exceeded"})
"""Tool errors the caller can mend by giving credentials (or a budget), then answering on the same task."""


class AskUserArgs(Payload):
    question: str = Field(min_length=1, max_length=4000, description="What to ask, in full: the run waits for the "
                                                                     "answer of whoever started it.")


class Parked(Exception):  # noqa: N818 - not an error: the run waits
    """A tool call the run cannot go past without its caller: `kind` input or auth, `message` for the caller."""

    def __init__(self, kind: str, message: str, call: ToolCall, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.call, self.details = kind, message, call, details or {}
        self.before: list[tuple[ToolCall, Any, bool]] = []  # the same completion's calls that ran before this one
        self.after: list[ToolCall] = []  # and those after it: not made

    def results(self) -> list[tuple[ToolCall, Any, bool]]:
        """The completion's other calls as results to store: those made, and those not made (said so)."""
        skipped = {"code": "not_run", "message": "not made: the run waited for its caller first; call it again if "
                                                 "it is still needed"}
        return [*self.before, *((call, skipped, True) for call in self.after)]

    def waiting(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "tool_call_id": self.call.id,
                "tool_name": self.call.name, "details": self.details}


def ask(call: ToolCall, question: str) -> Parked:
    return Parked(INPUT, question, call)


def auth_needed(call: ToolCall, error: OneError) -> Parked | None:
    """The tool's refusal as a wait for the caller's credentials, when it is one the caller can mend."""
    if error.code not in AUTH_CODES:
        return None
    return Parked(AUTH, error.message, call, {"code": error.code, **error.details})


def reply_result(run: RunRow, reply: str) -> dict[str, Any]:
    """The waiting call's result once the caller answers: the answer itself, or (auth) the caller's word that the
    credentials are in place, so the model may try again."""
    waiting = run.waiting or {}
    if waiting.get("kind") == AUTH:
        result: Any = {"caller_reply": reply, "note": "the caller was asked for the credentials this call needed and "
                                                      "answered; the call may succeed if made again"}
    else:
        result = {"answer": reply}
    return {"tool_call_id": waiting.get("tool_call_id"), "tool_name": waiting.get("tool_name"), "result": result,
            "is_error": False}


async def wake(ctx: WorkContext, run: RunRow, reply: str) -> RunRow | None:
    """In the caller's transaction: the reply stored as the waiting call's result, the run `running` again with a
    lease of this replica; None when the run was not waiting (another message woke it first)."""
    settings, state = ctx.runtime.settings, state_of(ctx.runtime)
    woken = await repo.wake_run(ctx.session, run.org_id, run.id, state.replica, settings.agents_lease_seconds)
    if woken is None:
        return None
    last = await repo.steps_of(ctx.session, run.org_id, run.id)
    await repo.insert_steps(ctx.session, run.org_id, run.id, (last[-1].seq + 1) if last else 1,
                            [(StepKind.TOOL_RESULT.value, run.iterations, reply_result(run, reply))])
    return woken


def resume_in_task(ctx: WorkContext, run: RunRow) -> Any:
    """Go on with a woken run in a task of this replica (after the caller's transaction committed)."""
    from services.agents.run_lifecycle import execute  # the lifecycle imports the tools, which import this module

    return state_of(ctx.runtime).spawn(execute(ctx.runtime, run.org_id, run.id, resume=True, woken=True),
                                       name=f"agents-run-{run.id}")
