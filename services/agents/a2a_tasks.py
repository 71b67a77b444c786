"""A task as A2A's own JSON (the protobuf JSON mapping a2a-sdk reads: camelCase, `TASK_STATE_*`, `ROLE_*`).

A task's state is the run's (`running` → working, `waiting` → input-required or auth-required, `completed`,
`failed`) unless the task row says otherwise (`canceled`, or `rejected`: refused before any run, so it has none);
its artifact is the run's answer, with its citations as a data part; its history the messages it received and the
agent's (its questions, once completed its answer). An interrupted task's status message is what the run waits
for (the question, or the credentials needed, with the tool's error in its metadata).
"""

import json
from typing import Any

from services.agents.models_a2a import PushRow, TaskRow
from services.agents.rows import RunRow
from shared.contracts.a2a import A2aTask
from shared.kernel.errors import InvalidRequest

CANCELED, WORKING, REJECTED = "TASK_STATE_CANCELED", "TASK_STATE_WORKING", "TASK_STATE_REJECTED"
INPUT_REQUIRED, AUTH_REQUIRED = "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"
_OF_RUN = {"running": WORKING, "completed": "TASK_STATE_COMPLETED", "failed": "TASK_STATE_FAILED"}
_OF_WAIT = {"input": INPUT_REQUIRED, "auth": AUTH_REQUIRED}
FINAL = frozenset({"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", CANCELED, REJECTED})
INPUT_MODES = ("text/plain", "application/json")
"""What an agent reads (its card's `defaultInputModes`): text, and JSON data; a file part of another type is
refused (the task `rejected`)."""


def state_of_task(task: TaskRow, run: RunRow | None) -> str:
    if task.state or run is None:
        return task.state or REJECTED
    if run.status == "waiting":
        return _OF_WAIT.get((run.waiting or {}).get("kind"), INPUT_REQUIRED)
    return _OF_RUN[run.status]


def waiting_message(task: TaskRow, run: RunRow) -> dict[str, Any]:
    """The agent's message of a waiting run: its question, or what credentials it needs."""
    waiting = run.waiting or {}
    return {"messageId": f"{run.id}-asks-{run.iterations}", "role": "ROLE_AGENT", "taskId": str(task.id),
            "contextId": str(task.context_id), "parts": [{"text": waiting.get("message") or "more input is needed"}],
            "metadata": {"kind": waiting.get("kind"), "tool": waiting.get("tool_name"),
                         **(waiting.get("details") or {})}}


def unsupported_modes(message: dict[str, Any]) -> list[str]:
    """The media types of the message's parts the agent does not read."""
    return [str(p["mediaType"]) for p in message.get("parts") or []
            if isinstance(p, dict) and p.get("mediaType") and str(p["mediaType"]).split(";")[0] not in INPUT_MODES]


def _keep_history(body: dict[str, Any], history: list[dict[str, Any]], length: int | None) -> None:
    """The task's history as asked: all of it (None), none (0), or its last `length` messages."""
    if length != 0:
        body["history"] = history[-length:] if length else list(history)


def _rejected(task: TaskRow, history_length: int | None) -> A2aTask:
    refusal = task.metadata.get("rejection") or {}
    status = {"state": REJECTED, "timestamp": task.updated_at.isoformat(), "message": {
        "messageId": f"{task.id}-rejected", "role": "ROLE_AGENT", "taskId": str(task.id),
        "contextId": str(task.context_id), "parts": [{"text": refusal.get("message") or "the agent refused the task"}],
        "metadata": {"code": refusal.get("code")}}}
    body: dict[str, Any] = {"id": str(task.id), "contextId": str(task.context_id), "status": status,
                            "metadata": {"agent": task.agent_slug}}
    _keep_history(body, task.history, history_length)
    return A2aTask(task=body, run_id=None, org_id=task.org_id, final=True)


def _answered(task: TaskRow, history_length: int | None, artifacts: bool) -> A2aTask:
    """A task answered at once, without a run (`metadata.answered`: an AP2 merchant's answer, a2a_ap2.py): its data
    part is the artifact, or — the task failed — the status message's, beside the text saying why."""
    answered = task.metadata["answered"]
    ids = {"taskId": str(task.id), "contextId": str(task.context_id)}
    part = {"data": answered["data"], "mediaType": "application/json"}
    status: dict[str, Any] = {"state": task.state, "timestamp": task.updated_at.isoformat()}
    body: dict[str, Any] = {"id": ids["taskId"], "contextId": ids["contextId"], "status": status,
                            "metadata": {"agent": task.agent_slug, **(answered.get("metadata") or {})}}
    if task.state != "TASK_STATE_COMPLETED":
        status["message"] = {"messageId": f"{task.id}-status", "role": "ROLE_AGENT", **ids,
                             "parts": [{"text": answered.get("text") or "the agent refused"}, part]}
    elif artifacts:
        name = answered.get("name") or "answer"
        body["artifacts"] = [{"artifactId": f"{task.id}-{name}", "name": name, "parts": [part]}]
    _keep_history(body, task.history, history_length)
    return A2aTask(task=body, run_id=None, org_id=task.org_id, final=True)


def to_task(task: TaskRow, run: RunRow | None, *, history_length: int | None = None,
            artifacts: bool = True) -> A2aTask:
    """The task as A2A `Task` JSON: status from the run, the answer (and citations) as its artifact."""
    if run is None:
        return _answered(task, history_length, artifacts) if "answered" in task.metadata else \
            _rejected(task, history_length)
    state = state_of_task(task, run)
    ids = {"taskId": str(task.id), "contextId": str(task.context_id)}
    status: dict[str, Any] = {"state": state, "timestamp": (run.finished_at or task.updated_at).isoformat()}
    history = list(task.history)
    if state in (INPUT_REQUIRED, AUTH_REQUIRED):
        status["message"] = waiting_message(task, run)
        history.append(status["message"])
    elif state == "TASK_STATE_COMPLETED" and run.answer is not None:
        history.append({"messageId": f"{run.id}-answer", "role": "ROLE_AGENT", "parts": [{"text": run.answer}], **ids})
    elif state in ("TASK_STATE_FAILED", CANCELED):
        error = run.error or {"code": "canceled", "message": "the task was canceled"}
        status["message"] = {"messageId": f"{run.id}-status", "role": "ROLE_AGENT", **ids,
                             "parts": [{"text": error.get("message") or "the run failed"}],
                             "metadata": {"code": error.get("code")}}
    body: dict[str, Any] = {"id": str(task.id), "contextId": str(task.context_id), "status": status,
                            "metadata": {"runId": str(run.id), "agent": task.agent_slug}}
    _keep_history(body, history, history_length)
    if artifacts and state == "TASK_STATE_COMPLETED" and run.answer is not None:
        parts: list[dict[str, Any]] = [{"text": run.answer}]
        if run.citations:
            parts.append({"data": {"citations": run.citations}, "mediaType": "application/json"})
        body["artifacts"] = [{"artifactId": f"{run.id}-answer", "name": "answer", "parts": parts}]
    return A2aTask(task=body, run_id=run.id, org_id=task.org_id, final=state in FINAL)


def message_text(message: dict[str, Any]) -> str:
    """What the model reads of an A2A message: its text parts, data parts as JSON, file parts by URL or name."""
    texts = []
    for part in message.get("parts") or []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif "data" in part:
            texts.append(json.dumps(part["data"], default=str))
        elif part.get("url") or part.get("filename"):
            texts.append(f"[file: {part.get('url') or part.get('filename')}]")
    text = "\n".join(t for t in texts if t).strip()
    if not text:
        raise InvalidRequest("the message has no text, data or file part", {"field": "message.parts"})
    return text



def to_config(row: PushRow) -> dict[str, Any]:
    """A2A `TaskPushNotificationConfig` JSON."""
    config: dict[str, Any] = {"id": row.config_id, "taskId": str(row.task_id), "url": row.url}
    if row.token:
        config["token"] = row.token
    if row.authentication:
        config["authentication"] = row.authentication
    return config
