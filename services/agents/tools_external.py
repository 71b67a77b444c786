"""External A2A agents as tools of a run: `a2a__<slug>` for each external agent the config's `delegates_to` names.

The model sees each remote agent's name, platform, description and skills (from its card) and gives the task
in words; the call is a delegation (delegation.py: checks, the `delegated` connection, `task_event`s) whose
work is the exchange here: the task sent through the official a2a-sdk client (a2a_client.py) and its answer
returned to the loop. Each message exchanged is a `communication_event` (outbound, then inbound) with
`metadata.protocol = "a2a"` and the remote platform's name, counted on the external agent's row and on the
`communicated` connection from our agent to it (`metadata.messagesExchanged`).
"""

import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import Field

from services.agents import a2a_client, keys, repository_external as repo
from services.agents.models_external import ExternalAgentRow
from services.agents.providers.base import ToolSpec
from shared.contracts.agents.external import EXTERNAL_TOOL_PREFIX
from shared.contracts.graph import CONNECTION_CREATE, CONNECTION_UPDATE
from shared.kernel.envelope import Payload, Protocol
from shared.kernel.errors import OneError
from shared.kernel.ontology import EventType

if TYPE_CHECKING:  # run_work assembles a run's tools from this module
    from services.agents.run_work import RunWork

log = logging.getLogger(__name__)
PREVIEW_CHARS = 280
"""How much of a message an event keeps (the whole text is the run's tool call and result)."""


class ExternalTaskArgs(Payload):
    task: str = Field(min_length=1, max_length=8000, description="What the external agent should do, in full "
                                                                  "(or, with task_id, the answer to its question).")
    task_id: str | None = Field(None, max_length=200, description="Answer the external agent's question on this "
                                                                  "task (the task_id of an input-required error).")
    context_id: str | None = Field(None, max_length=200, description="Continue this conversation with the external "
                                                                     "agent (the context_id of an earlier answer).")

    def follow_up(self) -> dict[str, str]:
        return {k: v for k, v in (("task_id", self.task_id), ("context_id", self.context_id)) if v}


def is_external_tool(name: str) -> bool:
    return name.startswith(EXTERNAL_TOOL_PREFIX)


def slug_of_tool(name: str) -> str:
    return name.removeprefix(EXTERNAL_TOOL_PREFIX)


async def find(work: "RunWork", name: str) -> ExternalAgentRow | None:
    """The org's external agent by slug or id, or None."""
    try:
        agent_id: UUID | None = UUID(name)
    except ValueError:
        agent_id = None
    async with work.runtime.db.transaction(work.run.org_id) as session:
        return await repo.get(session, work.run.org_id, slug=None if agent_id else name, agent_id=agent_id)


def _description(row: ExternalAgentRow) -> str:
    skills = "; ".join(f"{s.get('name') or s.get('id')}: {s.get('description', '')}" for s in
                       row.card.get("skills") or [])
    text = (f"Delegate a task to {row.name}, an external agent of {row.provider or 'another platform'} (over A2A), "
            f"and get its answer. {row.description}" + (f" Skills: {skills}" if skills else ""))
    return text[:1000]


async def tool_specs(work: "RunWork") -> list[ToolSpec]:
    """A tool for each active external agent the config's `delegates_to` names."""
    slugs = list(work.config.get("delegates_to") or [])
    if not slugs:
        return []
    async with work.runtime.db.transaction(work.run.org_id) as session:
        rows = await repo.active_by_slugs(session, work.run.org_id, slugs)
    schema = ExternalTaskArgs.model_json_schema()
    return [ToolSpec(f"{EXTERNAL_TOOL_PREFIX}{row.slug}", _description(row), schema) for row in rows]


def _camel(name: str) -> str:
    """`task_id` → `remoteTaskId`, `context_id` → `contextId`, `state` → `state` (the events' metadata keys)."""
    return {"task_id": "remoteTaskId", "context_id": "contextId"}.get(name, name)


def via(row: ExternalAgentRow) -> dict[str, Any]:
    """What every connection and event of an exchange with `row` says about how it went."""
    return {"protocol": "a2a", "platform": row.provider or "unknown"}


async def _record(work: "RunWork", target: ExternalAgentRow, messages: list[tuple[str, str, dict[str, Any]]],
                  sent: int = 0, received: int = 0) -> None:
    """`communication_event`s for (direction, text, metadata) messages, and the counts, in one transaction."""
    link, total = None, 0
    async with work.ctx.transaction() as tx:
        for direction, text, metadata in messages:
            await tx.emit(EventType.COMMUNICATION_EVENT, target_id=target.id, target_type=target.type,
                          protocol=Protocol.A2A, metadata={
                              "messageType": "task_delegation", "direction": direction, **via(target),
                              "fromAgentId": str(work.agent.id), "toAgentId": str(target.id),
                              "parentRunId": str(work.run.id), "chars": len(text), "preview": text[:PREVIEW_CHARS],
                              **metadata})
        if sent or received:
            await repo.count_messages(tx.session, target.org_id, target.id, sent, received)
            link, total = await repo.tally_exchange(tx.session, target.org_id, work.agent.id, target.id,
                                                    sent + received)
    if sent or received:
        await _communicated(work, target, link, total)


async def _communicated(work: "RunWork", target: ExternalAgentRow, connection_id: UUID | None, total: int) -> None:
    """The `communicated` connection (our agent → the external agent), its `messagesExchanged` the pair's tally.

    A graph that fails here is logged: the delegation's answer stands all the same.
    Two first exchanges of a pair at once may each make a connection; the tally keeps the last one.
    """
    metadata = {"messageType": "task_delegation", **via(target), "messagesExchanged": total}
    try:
        if connection_id is not None:
            await work.ctx.call(CONNECTION_UPDATE, {"id": str(connection_id), "metadata": metadata},
                                auth=work.service_auth)
            return
        made = await work.ctx.call(CONNECTION_CREATE, {
            "from_id": str(work.agent.id), "to_id": str(target.id), "type": "communicated", "metadata": metadata,
        }, auth=work.service_auth)
        async with work.runtime.db.transaction(target.org_id) as session:
            await repo.link_exchange(session, target.org_id, work.agent.id, target.id, made.id)
    except OneError:
        log.warning("a2a: could not record the exchange of agent %s with %s in the graph", work.agent.slug,
                    target.slug, exc_info=True)


async def exchange(work: "RunWork", target: ExternalAgentRow, task: str,
                   follow_up: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send the task (in an earlier task or context: `follow_up`), wait for the answer: (the tool's result, what
    the `completed` task_event adds)."""
    await _record(work, target, [("outbound", task, {_camel(k): v for k, v in follow_up.items()})])
    try:
        credential = await keys.external_credential(work.runtime, target)
        done = await a2a_client.send_task(target.card, credential, task, target.timeout, **follow_up)
    except OneError as error:
        answered = str(error.details.get("remote_message") or "")
        remote = {_camel(k): error.details[k] for k in ("state", "task_id", "context_id") if error.details.get(k)}
        await _record(work, target, [("inbound", answered, {"error": error.code, **remote})] if answered else [],
                      sent=1, received=1 if answered else 0)
        raise
    answer = done.text()
    remote = {"remoteTaskId": done.task_id, "contextId": done.context_id, "state": done.state,
              "streamed": done.streamed}
    await _record(work, target, [("inbound", answer, remote)], sent=1, received=1)
    result = {"agent": target.slug, "name": target.name, **via(target), "status": done.state, "answer": answer,
              "task_id": done.task_id, "context_id": done.context_id, "streamed": done.streamed}
    return result, {"remoteTaskId": done.task_id, "state": done.state}
