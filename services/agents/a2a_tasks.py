"""A task as A2A's own JSON (the protobuf JSON mapping a2a-sdk reads: camelCase, `TASK_STATE_*`, `ROLE_*`).

A task's state is the run's (`running` → working, `completed`, `failed`) unless the task row says
otherwise (`canceled`); its artifact is the run's answer, with its citations as a data part; its history
the messages it received and, once completed, the agent's answer.
"""

import json
from typing import Any

from services.agents.models_a2a import PushRow, TaskRow
from services.agents.rows import RunRow
from shared.contracts.a2a import A2aTask
from shared.kernel.errors import InvalidRequest

CANCELED, WORKING = "TASK_STATE_CANCELED", "TASK_STATE_WORKING"
_OF_RUN = {"running": WORKING, "completed": "TASK_STATE_COMPLETED", "failed": "TASK_STATE_FAILED"}
FINAL = frozenset({"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", CANCELED, "TASK_STATE_REJECTED"})


def state_of_task(task: TaskRow, run: RunRow) -> str:
    return task.state or _OF_RUN[run.status]


def to_task(task: TaskRow, run: RunRow, *, history_length: int | None = None, artifacts: bool = True) -> A2aTask:
    """The task as A2A `Task` JSON: status from the run, the answer (and citations) as its artifact."""
    state = state_of_task(task, run)
    ids = {"taskId": str(task.id), "contextId": str(task.context_id)}
    status: dict[str, Any] = {"state": state, "timestamp": (run.finished_at or task.updated_at).isoformat()}
    history = list(task.history)
    if state == "TASK_STATE_COMPLETED" and run.answer is not None:
        history.append({"messageId": f"{run.id}-answer", "role": "ROLE_AGENT", "parts": [{"text": run.answer}], **ids})
    elif state in ("TASK_STATE_FAILED", CANCELED):
        error = run.error or {"code": "canceled", "message": "the task was canceled"}
        status["message"] = {"messageId": f"{run.id}-status", "role": "ROLE_AGENT", **ids,
                             "parts": [{"text": error.get("message") or "the run failed"}],
                             "metadata": {"code": error.get("code")}}
    body: dict[str, Any] = {"id": str(task.id), "contextId": str(task.context_id), "status": status,
                            "metadata": {"runId": str(run.id), "agent": task.agent_slug}}
    if history_length != 0:
        body["history"] = history[-history_length:] if history_length else history
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
