"""The SQL of agents, their configs and prompts; every statement filters on the caller's org (RLS backs it up).

Configs are append-only: a change inserts the next version of its environment, and the current
config is the highest version. Pages are keyset pages on `id` (UUIDv7: creation order).
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models import agent_configs, agents, prompts
from services.agents.rows import AgentRow, ConfigRow, PromptRow
from shared.kernel.ids import uuid7

NOW = sa.func.clock_timestamp()


async def insert_agent(session: AsyncConnection, values: dict[str, Any]) -> AgentRow | None:
    """None when the slug is taken in the org."""
    statement = pg_insert(agents).values(**values).on_conflict_do_nothing(index_elements=["org_id", "slug"])
    row = (await session.execute(statement.returning(agents))).first()
    return AgentRow.of(row) if row else None


async def get_agent(
    session: AsyncConnection, org_id: UUID, *, slug: str | None = None, agent_id: UUID | None = None,
    for_update: bool = False,
) -> AgentRow | None:
    statement = sa.select(agents).where(agents.c.org_id == org_id)
    statement = statement.where(agents.c.slug == slug) if slug is not None else statement.where(agents.c.id == agent_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return AgentRow.of(row) if row else None


async def list_agents(
    session: AsyncConnection, org_id: UUID, *, include_archived: bool, cursor: UUID | None, limit: int
) -> list[AgentRow]:
    statement = sa.select(agents).where(agents.c.org_id == org_id).order_by(agents.c.id).limit(limit)
    if not include_archived:
        statement = statement.where(agents.c.status == "active")
    if cursor is not None:
        statement = statement.where(agents.c.id > cursor)
    return [AgentRow.of(row) for row in await session.execute(statement)]


async def update_agent(session: AsyncConnection, org_id: UUID, agent_id: UUID, values: dict[str, Any]) -> AgentRow:
    statement = (
        sa.update(agents).where(agents.c.org_id == org_id, agents.c.id == agent_id)
        .values(**values, updated_at=NOW).returning(agents)
    )
    return AgentRow.of((await session.execute(statement)).one())


async def insert_config(
    session: AsyncConnection, org_id: UUID, agent_id: UUID, environment: str, version: int, config: dict[str, Any],
    created_by: UUID,
) -> ConfigRow | None:
    """None when that version exists already (a concurrent change took it)."""
    statement = pg_insert(agent_configs).values(
        id=uuid7(), org_id=org_id, agent_id=agent_id, environment=environment, version=version,
        config=config, created_by=created_by,
    ).on_conflict_do_nothing(index_elements=["org_id", "agent_id", "environment", "version"])
    row = (await session.execute(statement.returning(agent_configs))).first()
    return ConfigRow.of(row) if row else None


async def current_configs(session: AsyncConnection, org_id: UUID, agent_ids: Sequence[UUID]) -> dict[tuple[UUID, str], ConfigRow]:
    """The highest version of each environment's config of each agent, by (agent id, environment)."""
    if not agent_ids:
        return {}
    statement = (
        sa.select(agent_configs)
        .where(agent_configs.c.org_id == org_id, agent_configs.c.agent_id.in_(list(agent_ids)))
        .distinct(agent_configs.c.agent_id, agent_configs.c.environment)
        .order_by(agent_configs.c.agent_id, agent_configs.c.environment, agent_configs.c.version.desc())
    )
    found = [ConfigRow.of(row) for row in await session.execute(statement)]
    return {(row.agent_id, row.environment): row for row in found}


async def config_versions(session: AsyncConnection, org_id: UUID, agent_id: UUID, environment: str | None) -> list[ConfigRow]:
    statement = sa.select(agent_configs).where(agent_configs.c.org_id == org_id, agent_configs.c.agent_id == agent_id)
    if environment is not None:
        statement = statement.where(agent_configs.c.environment == environment)
    statement = statement.order_by(agent_configs.c.environment, agent_configs.c.version.desc())
    return [ConfigRow.of(row) for row in await session.execute(statement)]


async def config_version(session: AsyncConnection, org_id: UUID, agent_id: UUID, environment: str, version: int) -> ConfigRow | None:
    statement = sa.select(agent_configs).where(
        agent_configs.c.org_id == org_id, agent_configs.c.agent_id == agent_id,
        agent_configs.c.environment == environment, agent_configs.c.version == version,
    )
    row = (await session.execute(statement)).first()
    return ConfigRow.of(row) if row else None


async def insert_prompt(session: AsyncConnection, values: dict[str, Any]) -> PromptRow:
    return PromptRow.of((await session.execute(sa.insert(prompts).values(**values).returning(prompts))).one())


async def get_prompt(session: AsyncConnection, org_id: UUID, prompt_id: UUID) -> PromptRow | None:
    statement = sa.select(prompts).where(prompts.c.org_id == org_id, prompts.c.id == prompt_id)
    row = (await session.execute(statement)).first()
    return PromptRow.of(row) if row else None


async def prompts_by_ids(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> list[PromptRow]:
    """The active prompts among `ids`, in the order of `ids`."""
    if not ids:
        return []
    statement = sa.select(prompts).where(
        prompts.c.org_id == org_id, prompts.c.id.in_(list(ids)), prompts.c.status == "active"
    )
    found = {row.id: row for row in (PromptRow.of(r) for r in await session.execute(statement))}
    return [found[i] for i in ids if i in found]


async def list_prompts(
    session: AsyncConnection, org_id: UUID, *, step: str | None, include_archived: bool, cursor: UUID | None, limit: int
) -> list[PromptRow]:
    statement = sa.select(prompts).where(prompts.c.org_id == org_id).order_by(prompts.c.id).limit(limit)
    if step is not None:
        statement = statement.where(prompts.c.step == step)
    if not include_archived:
        statement = statement.where(prompts.c.status == "active")
    if cursor is not None:
        statement = statement.where(prompts.c.id > cursor)
    return [PromptRow.of(row) for row in await session.execute(statement)]


async def update_prompt(session: AsyncConnection, org_id: UUID, prompt_id: UUID, values: dict[str, Any]) -> PromptRow | None:
    statement = (
        sa.update(prompts).where(prompts.c.org_id == org_id, prompts.c.id == prompt_id)
        .values(**values, version=prompts.c.version + 1, updated_at=NOW).returning(prompts)
    )
    row = (await session.execute(statement)).first()
    return PromptRow.of(row) if row else None


