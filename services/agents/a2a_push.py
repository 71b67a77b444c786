"""A2A push notifications: a client's webhooks for a task, told of the task's final state by a durable job.

Setting a config (with the message, or later) stores it and enqueues one `a2a.push` job for it in the
same transaction (idempotency key per task and config: setting it again does not notify twice). The
job (job_handlers.py) waits for the task to end or to be interrupted (input-required, auth-required: the
client must act), then POSTs `{"task": <Task>}` (A2A's `StreamResponse`)
to the URL with `X-A2A-Notification-Token: <token>` (as a2a-sdk's own sender) and, when the client set a
token, `X-One-Signature: t=<unix>,v1=<hex HMAC-SHA256(token, "<t>.<body>")>` (the platform's webhook
signature, tools_custom.sign); `authentication` becomes `Authorization: <scheme> <credentials>`. A
refused or failed delivery fails the attempt: the jobs' backoff retries it, up to `MAX_ATTEMPTS`. The client's
reply to an interrupted task schedules each of its configs once more (`again`), for the task's next stop.
The token and `authentication` are sealed at rest (`keys.PUSH_SECRETS`, bound to the org, task and config) and
opened to notify or to answer the client (`opened`).
"""

import asyncio
import dataclasses
import json
from typing import Any
from uuid import UUID, uuid4

from services.agents import keys, repository_a2a as repo, repository_jobs as jobs_repo
from services.agents.a2a_tasks import AUTH_REQUIRED, FINAL, INPUT_REQUIRED, state_of_task, to_config, to_task
from services.agents.models_a2a import PushRow
from services.agents.models_jobs import JobRow
from services.agents.state import of as state_of
from services.agents.tools_custom import sign
from shared.contracts.a2a import PUSH_SIGNATURE_HEADER, PUSH_TOKEN_HEADER, A2aPushConfig
from shared.contracts.jobs import A2aPushJobPayload, JobKind
from shared.kernel.errors import Unavailable
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

MAX_ATTEMPTS = 8
POLL_SECONDS = 0.25
TIMEOUT_SECONDS = 10.0
_STOPS = FINAL | {INPUT_REQUIRED, AUTH_REQUIRED}


async def put(ctx: WorkContext, task_id: UUID, config: A2aPushConfig) -> dict[str, Any]:
    """Store the config and schedule its notification (in the caller's transaction)."""
    config_id = config.id or uuid4().hex
    secrets = {k: v for k, v in (("token", config.token), ("authentication", config.authentication)) if v}
    sealed = await keys.seal(ctx.runtime, keys.PUSH_SECRETS, ctx.auth.org_id, f"{task_id}/{config_id}",
                             json.dumps(secrets).encode()) if secrets else None
    row = await repo.put_push(ctx.session, {
        "org_id": ctx.auth.org_id, "task_id": task_id, "config_id": config_id, "url": config.url,
        "token": None, "authentication": None, "secrets_sealed": sealed})
    await _schedule(ctx, task_id, row.config_id, f"a2a-push-{task_id}-{row.config_id}")
    return to_config(dataclasses.replace(row, **secrets))


async def opened(runtime: ServiceRuntime, row: PushRow) -> PushRow:
    """The config with its token and authentication in clear (in memory only)."""
    if row.secrets_sealed is None:
        return row
    secrets = json.loads(await keys.open_sealed(runtime, keys.PUSH_SECRETS, row.org_id,
                                                f"{row.task_id}/{row.config_id}", bytes(row.secrets_sealed)))
    return dataclasses.replace(row, **secrets)


async def again(ctx: WorkContext, task_id: UUID, turn: int) -> None:
    """Schedule every config of the task once more, for its stop after the client's reply number `turn`."""
    for row in await repo.push_configs(ctx.session, ctx.auth.org_id, task_id):
        await _schedule(ctx, task_id, row.config_id, f"a2a-push-{task_id}-{row.config_id}-{turn}")


async def _schedule(ctx: WorkContext, task_id: UUID, config_id: str, key: str) -> None:
    job = await jobs_repo.insert(ctx.session, jobs_repo.NewJob(
        id=uuid7(), org_id=ctx.auth.org_id, queue="default", kind=JobKind.A2A_PUSH,
        payload={"task_id": str(task_id), "config_id": config_id}, priority=10, run_at=None,
        max_attempts=MAX_ATTEMPTS, idempotency_key=key[:200], enqueued_by=ctx.auth.actor_id))
    if job is not None:
        await jobs_repo.notify(ctx.session, job.queue)
        await ctx.emit(EventType.TASK_EVENT, target_id=job.id, metadata={
            "protocol": "native", "taskType": "job", "action": "enqueued", "jobId": str(job.id), "kind": job.kind,
            "queue": job.queue, "state": job.state, "attempt": 0, "maxAttempts": job.max_attempts})


async def deliver(ctx: WorkContext, job: JobRow, payload: A2aPushJobPayload) -> dict[str, Any]:
    """The job: wait for the task to end, then notify the webhook (an error fails the attempt: retried)."""
    while True:
        async with ctx.transaction() as tx:
            found = await repo.get_task(tx.session, job.org_id, None, payload.task_id)
            configs = await repo.push_configs(tx.session, job.org_id, payload.task_id, payload.config_id)
        if found is None or not configs:
            return {"delivered": False, "reason": "the task or its push config is gone"}
        task, run = found
        if state_of_task(task, run) in _STOPS:
            break
        await asyncio.sleep(POLL_SECONDS)
    config = await opened(ctx.runtime, configs[0])
    body = json.dumps({"task": to_task(task, run).task}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if config.token:
        headers[PUSH_TOKEN_HEADER] = config.token
        headers[PUSH_SIGNATURE_HEADER] = sign(config.token, body)
    auth = config.authentication or {}
    if auth.get("scheme") and auth.get("credentials"):
        headers["Authorization"] = f"{auth['scheme']} {auth['credentials']}"
    try:
        response = await state_of(ctx.runtime).http.post(config.url, content=body, headers=headers,
                                                         timeout=TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any transport failure is a failed attempt
        raise Unavailable(f"the webhook could not be reached: {type(error).__name__}") from None
    if response.status_code >= 300:
        raise Unavailable(f"the webhook answered {response.status_code}", {"status": response.status_code})
    return {"delivered": True, "status": response.status_code, "state": state_of_task(task, run)}
