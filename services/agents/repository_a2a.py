"""Every SQL statement of A2A tasks, their push configs and their external callers (org-scoped, RLS)."""

from dataclasses import fields
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models import runs
from services.agents.models_a2a import (
    CallerLink,
    PushRow,
    TaskRow,
    a2a_caller_agents,
    a2a_callers,
    a2a_push_configs,
    a2a_tasks,
)
from services.agents.rows import RunRow

NOW = sa.func.clock_timestamp()
_RUN_STATUS = {"TASK_STATE_WORKING": "running", "TASK_STATE_COMPLETED": "completed", "TASK_STATE_FAILED": "failed"}
_WAITING = {"TASK_STATE_INPUT_REQUIRED": "input", "TASK_STATE_AUTH_REQUIRED": "auth"}
_OWN_STATES = ("TASK_STATE_CANCELED", "TASK_STATE_REJECTED")
_JOINED = sa.and_(runs.c.id == a2a_tasks.c.run_id, runs.c.org_id == a2a_tasks.c.org_id)


def _pair(row: Any) -> tuple[TaskRow, RunRow | None]:
    """The task and its run (None: a task rejected before any run)."""
    mapping = row._mapping
    if mapping["r__id"] is None:
        return TaskRow.of(row), None
    return TaskRow.of(row), RunRow(**{f.name: mapping[f"r__{f.name}"] for f in fields(RunRow)})


def _with_run() -> Any:
    """The task's columns and its run's (labelled `r__<column>`: both tables have `id`, `org_id`, ...)."""
    return sa.select(a2a_tasks, *(c.label(f"r__{c.name}") for c in runs.columns)).outerjoin(runs, _JOINED)


async def insert_task(session: AsyncConnection, values: dict[str, Any]) -> TaskRow:
    return TaskRow.of((await session.execute(sa.insert(a2a_tasks).values(**values).returning(a2a_tasks))).one())


async def get_task(session: AsyncConnection, org_id: UUID, agent_id: UUID | None, task_id: UUID,
                   *, for_update: bool = False) -> tuple[TaskRow, RunRow | None] | None:
    """The task of this agent (any agent's: None) with its run."""
    statement = _with_run().where(a2a_tasks.c.org_id == org_id, a2a_tasks.c.id == task_id)
    if agent_id is not None:
        statement = statement.where(a2a_tasks.c.agent_id == agent_id)
    if for_update:
        statement = statement.with_for_update(of=a2a_tasks)
    row = (await session.execute(statement)).first()
    return _pair(row) if row else None


def _state_filter(state: str) -> Any:
    if state in _OWN_STATES:
        return a2a_tasks.c.state == state
    if state in _WAITING:
        return sa.and_(a2a_tasks.c.state.is_(None), runs.c.status == "waiting",
                       runs.c.waiting["kind"].astext == _WAITING[state])
    status = _RUN_STATUS.get(state)
    if status is None:
        return sa.false()
    return sa.or_(a2a_tasks.c.state == state,  # a task answered without a run (AP2) keeps its own state
                  sa.and_(a2a_tasks.c.state.is_(None), runs.c.status == status))


async def list_tasks(session: AsyncConnection, org_id: UUID, agent_id: UUID, *, context_id: UUID | None,
                     state: str | None, before: UUID | None,
                     limit: int) -> tuple[list[tuple[TaskRow, RunRow | None]], int]:
    """A page of the agent's tasks, newest first, and how many match in all."""
    conditions = [a2a_tasks.c.org_id == org_id, a2a_tasks.c.agent_id == agent_id]
    if context_id is not None:
        conditions.append(a2a_tasks.c.context_id == context_id)
    if state is not None:
        conditions.append(_state_filter(state))
    total = (await session.execute(
        sa.select(sa.func.count()).select_from(a2a_tasks.outerjoin(runs, _JOINED))
        .where(*conditions))).scalar_one()
    if before is not None:
        conditions.append(a2a_tasks.c.id < before)
    rows = await session.execute(_with_run().where(*conditions).order_by(a2a_tasks.c.id.desc()).limit(limit))
    return [_pair(row) for row in rows], total


async def update_task(session: AsyncConnection, org_id: UUID, task_id: UUID, *, state: str | None = None,
                      add_history: list[dict[str, Any]] | None = None) -> None:
    values: dict[str, Any] = {"updated_at": NOW}
    if state is not None:
        values["state"] = state
    if add_history:
        values["history"] = a2a_tasks.c.history.op("||")(sa.cast(add_history, a2a_tasks.c.history.type))
    await session.execute(sa.update(a2a_tasks).where(a2a_tasks.c.org_id == org_id, a2a_tasks.c.id == task_id)
                          .values(**values))


async def put_push(session: AsyncConnection, values: dict[str, Any]) -> PushRow:
    statement = pg_insert(a2a_push_configs).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[a2a_push_configs.c.task_id, a2a_push_configs.c.config_id],
        set_={k: statement.excluded[k] for k in ("url", "token", "authentication", "secrets_sealed")})
    return PushRow.of((await session.execute(statement.returning(a2a_push_configs))).one())


async def push_configs(session: AsyncConnection, org_id: UUID, task_id: UUID,
                       config_id: str | None = None) -> list[PushRow]:
    statement = sa.select(a2a_push_configs).where(a2a_push_configs.c.org_id == org_id,
                                                  a2a_push_configs.c.task_id == task_id)
    if config_id is not None:
        statement = statement.where(a2a_push_configs.c.config_id == config_id)
    return [PushRow.of(row) for row in await session.execute(statement.order_by(a2a_push_configs.c.created_at))]


async def delete_push(session: AsyncConnection, org_id: UUID, task_id: UUID, config_id: str) -> bool:
    result = await session.execute(sa.delete(a2a_push_configs).where(
        a2a_push_configs.c.org_id == org_id, a2a_push_configs.c.task_id == task_id,
        a2a_push_configs.c.config_id == config_id))
    return bool(result.rowcount)


async def count_message(session: AsyncConnection, org_id: UUID, caller_id: UUID, caller_key: str, agent_id: UUID,
                        messages: int) -> CallerLink:
    """The caller (made on first contact) with its tally with the agent raised by `messages`."""
    await session.execute(pg_insert(a2a_callers).values(id=caller_id, org_id=org_id, caller_key=caller_key)
                          .on_conflict_do_nothing(index_elements=[a2a_callers.c.org_id, a2a_callers.c.caller_key]))
    caller = (await session.execute(sa.select(a2a_callers.c.id, a2a_callers.c.thing_id).where(
        a2a_callers.c.org_id == org_id, a2a_callers.c.caller_key == caller_key))).one()
    statement = pg_insert(a2a_caller_agents).values(org_id=org_id, caller_id=caller.id, agent_id=agent_id,
                                                    messages=messages)
    statement = statement.on_conflict_do_update(
        index_elements=[a2a_caller_agents.c.caller_id, a2a_caller_agents.c.agent_id],
        set_={"messages": a2a_caller_agents.c.messages + messages})
    tally = (await session.execute(statement.returning(a2a_caller_agents.c.connection_id,
                                                       a2a_caller_agents.c.messages))).one()
    return CallerLink(caller.id, caller.thing_id, tally.connection_id, tally.messages)


async def link_caller(session: AsyncConnection, org_id: UUID, caller_id: UUID, agent_id: UUID, *,
                      thing_id: UUID | None = None, connection_id: UUID | None = None) -> None:
    if thing_id is not None:
        await session.execute(sa.update(a2a_callers).where(a2a_callers.c.org_id == org_id,
                                                           a2a_callers.c.id == caller_id).values(thing_id=thing_id))
    if connection_id is not None:
        await session.execute(sa.update(a2a_caller_agents).where(
            a2a_caller_agents.c.org_id == org_id, a2a_caller_agents.c.caller_id == caller_id,
            a2a_caller_agents.c.agent_id == agent_id).values(connection_id=connection_id))
