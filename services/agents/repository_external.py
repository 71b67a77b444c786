"""Every SQL statement of external agents; each filters on the caller's org (RLS backs it up)."""

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models_external import ExternalAgentRow, external_agents, external_exchanges

NOW = sa.func.clock_timestamp()
_t = external_agents.c


async def insert(session: AsyncConnection, values: dict[str, Any]) -> ExternalAgentRow | None:
    """None when the slug is taken in the org (or the card URL by an active external agent)."""
    statement = pg_insert(external_agents).values(**values).on_conflict_do_nothing()
    row = (await session.execute(statement.returning(external_agents))).first()
    return ExternalAgentRow.of(row) if row else None


async def get(session: AsyncConnection, org_id: UUID, *, slug: str | None = None, agent_id: UUID | None = None,
              for_update: bool = False) -> ExternalAgentRow | None:
    statement = sa.select(external_agents).where(_t.org_id == org_id)
    statement = statement.where(_t.slug == slug) if slug is not None else statement.where(_t.id == agent_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return ExternalAgentRow.of(row) if row else None


async def taken(session: AsyncConnection, org_id: UUID, slug: str, card_url: str) -> str | None:
    """Which of the slug or the card URL (of an active external agent) the org uses already, if any."""
    statement = sa.select(_t.slug, _t.card_url).where(
        _t.org_id == org_id, sa.or_(_t.slug == slug, sa.and_(_t.card_url == card_url, _t.status == "active")))
    row = (await session.execute(statement.limit(1))).first()
    if row is None:
        return None
    return "slug" if row.slug == slug else "card_url"


async def list_page(session: AsyncConnection, org_id: UUID, *, include_archived: bool, cursor: UUID | None,
                    limit: int) -> list[ExternalAgentRow]:
    statement = sa.select(external_agents).where(_t.org_id == org_id).order_by(_t.id).limit(limit)
    if not include_archived:
        statement = statement.where(_t.status == "active")
    if cursor is not None:
        statement = statement.where(_t.id > cursor)
    return [ExternalAgentRow.of(row) for row in await session.execute(statement)]


async def update(session: AsyncConnection, org_id: UUID, agent_id: UUID, values: dict[str, Any]) -> ExternalAgentRow:
    statement = (sa.update(external_agents).where(_t.org_id == org_id, _t.id == agent_id)
                 .values(**values, updated_at=NOW).returning(external_agents))
    return ExternalAgentRow.of((await session.execute(statement)).one())


async def reseal_credential(session: AsyncConnection, org_id: UUID, agent_id: UUID, clear: str,
                            columns: dict[str, Any]) -> None:
    """Replace a credential stored in clear by its sealed columns, unless it was changed meanwhile."""
    await session.execute(sa.update(external_agents).where(
        _t.org_id == org_id, _t.id == agent_id, _t.credential == clear).values(**columns))


async def count_messages(session: AsyncConnection, org_id: UUID, agent_id: UUID, sent: int, received: int) -> None:
    """Add an exchange's messages to the counters (one statement: concurrent delegations add up)."""
    await session.execute(sa.update(external_agents).where(_t.org_id == org_id, _t.id == agent_id).values(
        messages_sent=_t.messages_sent + sent, messages_received=_t.messages_received + received, last_used_at=NOW))


async def active_by_slugs(session: AsyncConnection, org_id: UUID, slugs: list[str]) -> list[ExternalAgentRow]:
    """The active external agents among `slugs` (an agent's `delegates_to`), in slug order."""
    if not slugs:
        return []
    statement = sa.select(external_agents).where(_t.org_id == org_id, _t.slug.in_(slugs), _t.status == "active")
    return [ExternalAgentRow.of(row) for row in await session.execute(statement.order_by(_t.slug))]


async def tally_exchange(session: AsyncConnection, org_id: UUID, agent_id: UUID, external_id: UUID,
                         messages: int) -> tuple[UUID | None, int]:
    """Add an exchange's messages to the (our agent, external agent) tally: its `communicated` connection (None
    until one is made) and the total so far."""
    x = external_exchanges.c
    statement = pg_insert(external_exchanges).values(org_id=org_id, agent_id=agent_id, external_id=external_id,
                                                     messages=messages)
    statement = statement.on_conflict_do_update(index_elements=[x.org_id, x.agent_id, x.external_id],
                                                set_={"messages": x.messages + messages})
    row = (await session.execute(statement.returning(x.connection_id, x.messages))).one()
    return row.connection_id, row.messages


async def link_exchange(session: AsyncConnection, org_id: UUID, agent_id: UUID, external_id: UUID,
                        connection_id: UUID) -> None:
    x = external_exchanges.c
    await session.execute(sa.update(external_exchanges).where(
        x.org_id == org_id, x.agent_id == agent_id, x.external_id == external_id).values(connection_id=connection_id))
