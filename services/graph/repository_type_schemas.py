"""Every SQL statement about org thing-type property schemas; each one filters on the caller's org."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.graph.models import things, type_schemas

NOW = sa.func.clock_timestamp()


@dataclass(slots=True)
class TypeSchemaRow:
    org_id: UUID
    thing_type: str
    properties_schema: dict[str, Any]
    source: str
    description: str
    version: int
    created_at: datetime
    updated_at: datetime


async def get(session: AsyncConnection, org_id: UUID, thing_type: str, *, for_update: bool = False) -> TypeSchemaRow | None:
    statement = sa.select(type_schemas).where(type_schemas.c.org_id == org_id, type_schemas.c.thing_type == thing_type)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return None if row is None else TypeSchemaRow(*row)


async def list_all(session: AsyncConnection, org_id: UUID) -> list[TypeSchemaRow]:
    statement = sa.select(type_schemas).where(type_schemas.c.org_id == org_id).order_by(type_schemas.c.thing_type)
    return [TypeSchemaRow(*row) for row in await session.execute(statement)]


async def insert(session: AsyncConnection, values: dict[str, Any]) -> TypeSchemaRow | None:
    """None when a concurrent caller inserted the type's schema first."""
    statement = pg_insert(type_schemas).values(**values).on_conflict_do_nothing().returning(*type_schemas.c)
    row = (await session.execute(statement)).first()
    return None if row is None else TypeSchemaRow(*row)


async def replace(session: AsyncConnection, org_id: UUID, thing_type: str, values: dict[str, Any]) -> TypeSchemaRow:
    statement = (
        type_schemas.update()
        .where(type_schemas.c.org_id == org_id, type_schemas.c.thing_type == thing_type)
        .values(**values, version=type_schemas.c.version + 1, updated_at=NOW)
        .returning(*type_schemas.c)
    )
    return TypeSchemaRow(*(await session.execute(statement)).one())


async def delete(session: AsyncConnection, org_id: UUID, thing_type: str) -> None:
    await session.execute(
        type_schemas.delete().where(type_schemas.c.org_id == org_id, type_schemas.c.thing_type == thing_type)
    )


async def count_live_things(session: AsyncConnection, org_id: UUID, thing_type: str) -> int:
    statement = sa.select(sa.func.count()).select_from(things).where(
        things.c.org_id == org_id, things.c.type == thing_type, things.c.deleted_at.is_(None)
    )
    return int((await session.execute(statement)).scalar_one())
