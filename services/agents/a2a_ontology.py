"""What an A2A exchange leaves in the ontology (seed 003, "A2A Protocol"), with `metadata.protocol = "a2a"`.

- events, in the task's own transaction: a `communication_event` per message received (direction inbound)
  and a `task_event` per task: `received`, `rejected` (refused before any run), `resumed` (the caller answered),
  `canceled`; and from the run's own ending (run_lifecycle.py, for a run whose request names its task under
  `TASK_KEY`): `completed`, `failed`, `input_required`, `auth_required`;
- the caller, off the reply's path: an `external_agent` thing per caller of the org (by the card URL its
  message names, else its API key's id), made once (the graph's idempotency key), and a `communicated`
  connection from it to the agent whose `metadata.messageCount` is the messages it sent that agent.
"""

import logging
from typing import Any

from services.agents import repository_a2a as repo
from services.agents.models_a2a import TaskRow
from services.agents.rows import RunRow
from services.agents.state import of as state_of
from shared.contracts.a2a import A2aCaller
from shared.contracts.graph import CONNECTION_CREATE, CONNECTION_UPDATE, THING_CREATE
from shared.kernel.envelope import Protocol
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology import ConnectionType, EventType, ThingType
from shared.runtime.context import WorkContext

log = logging.getLogger(__name__)
PROTOCOL = "a2a"
TASK_KEY = "a2a_task"
"""The run request's entry naming the A2A task the run does."""


def caller_key(caller: A2aCaller, actor_id: Any) -> str:
    if caller.card_url:
        return f"card:{caller.card_url}"
    return f"key:{caller.key_id}" if caller.key_id else f"actor:{actor_id}"


def task_metadata(task: TaskRow, run: RunRow | None, action: str) -> dict[str, Any]:
    return {"protocol": PROTOCOL, "taskType": "a2a", "action": action, "taskId": str(task.id),
            "contextId": str(task.context_id), **({"runId": str(run.id)} if run else {}), "agentSlug": task.agent_slug}


def run_task_metadata(run: RunRow, action: str) -> dict[str, Any] | None:
    """A run's A2A task event metadata, or None for a run that does no A2A task."""
    task_id = run.request.get(TASK_KEY)
    if not task_id:
        return None
    return {"protocol": PROTOCOL, "taskType": "a2a", "action": action, "taskId": str(task_id),
            "contextId": str(run.conversation_id), "runId": str(run.id), "agentSlug": run.agent_slug}


def received_events(task: TaskRow, run: RunRow, caller: A2aCaller, message: dict[str, Any]) -> list[
        tuple[str, EventPayload]]:
    who = caller.model_dump(exclude_none=True)
    return [
        (EventType.COMMUNICATION_EVENT, EventPayload(target_id=task.agent_id, metadata={
            "protocol": PROTOCOL, "messageType": "a2a_message", "direction": "inbound",
            "messageId": str(message.get("messageId") or ""), "taskId": str(task.id),
            "contextId": str(task.context_id), "agentSlug": task.agent_slug, "caller": who})),
        (EventType.TASK_EVENT, EventPayload(target_id=task.agent_id, metadata={
            **task_metadata(task, run, "received"), "caller": who})),
    ]


def count_later(ctx: WorkContext, run: RunRow, caller: A2aCaller) -> None:
    """Count the message on the caller's `communicated` connection, in a task of this replica (one writer per
    caller and agent here: messages that arrive while it writes, or in the `agents_a2a_caller_tally_seconds`
    before it writes, are counted together)."""
    key = caller_key(caller, ctx.auth.actor_id)
    state_of(ctx.runtime).tally((run.org_id, key, run.agent_id), 1,
                                lambda messages: _count(ctx, run, caller, messages), name=f"a2a-caller-{run.id}",
                                gather=ctx.runtime.settings.agents_a2a_caller_tally_seconds)


async def _count(ctx: WorkContext, run: RunRow, caller: A2aCaller, messages: int = 1) -> None:
    key = caller_key(caller, ctx.auth.actor_id)
    agents = ctx.runtime.background(run.org_id, cause=ctx.envelope, on_behalf_of=ctx.auth.actor_id)
    try:
        async with agents.transaction() as tx:  # the tally's row stays locked until the connection is known
            link = await repo.count_message(tx.session, run.org_id, uuid7(), key, run.agent_id, messages)
            thing_id = link.thing_id
            if thing_id is None:
                name = caller.name or caller.card_url or f"A2A caller {caller.key_id or ctx.auth.actor_id}"
                thing = await agents.call(THING_CREATE, protocol=Protocol.NATIVE, payload={
                    "type": ThingType.EXTERNAL_AGENT, "name": name[:200], "status": "active",
                    "idempotency_key": f"a2a-caller-{key}"[:200],
                    "properties": {"platform": "custom", "agentId": key, "name": name[:200], "status": "online",
                                   "apiEndpoint": caller.card_url, "protocol": PROTOCOL, "cardUrl": caller.card_url,
                                   "keyId": caller.key_id, "actorId": str(ctx.auth.actor_id),
                                   "metadata": {"protocol": PROTOCOL, "direction": "inbound"}}})
                thing_id = thing.id
            metadata = {"protocol": PROTOCOL, "messageType": "a2a_message", "messageCount": link.messages}
            connection_id = link.connection_id
            if connection_id is None:
                connection_id = (await agents.call(CONNECTION_CREATE, protocol=Protocol.NATIVE, payload={
                    "from_id": str(thing_id), "to_id": str(run.agent_id), "type": ConnectionType.COMMUNICATED,
                    "metadata": metadata})).id
            else:
                await agents.call(CONNECTION_UPDATE, {"id": str(connection_id), "metadata": metadata},
                                  protocol=Protocol.NATIVE)
            await repo.link_caller(tx.session, run.org_id, link.caller_id, run.agent_id, thing_id=thing_id,
                                   connection_id=connection_id)
    except Exception:
        log.warning("a2a: could not record the caller of run %s in the graph", run.id, exc_info=True)
