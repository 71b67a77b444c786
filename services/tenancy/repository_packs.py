"""Every SQL statement about installed packs and the roles they bring; always org-scoped."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy.models import installed_packs, invites, memberships, policies, roles


@dataclass(slots=True)
class PackRow:
    org_id: UUID
    name: str
    version: str
    document: dict[str, Any]
    owned_roles: list[str]
    owned_policies: list[UUID]
    installed_by: UUID | None
    installed_at: datetime
    updated_at: datetime


async def get_pack(session: AsyncConnection, org_id: UUID, name: str, *, for_update: bool = False) -> PackRow | None:
    statement = sa.select(installed_packs).where(installed_packs.c.org_id == org_id, installed_packs.c.name == name)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return None if row is None else PackRow(*row)


async def list_packs(session: AsyncConnection, org_id: UUID) -> list[PackRow]:
    statement = sa.select(installed_packs).where(installed_packs.c.org_id == org_id).order_by(installed_packs.c.name)
    return [PackRow(*row) for row in await session.execute(statement)]


async def installed_pack_names(session: AsyncConnection, org_id: UUID) -> list[str]:
    statement = sa.select(installed_packs.c.name).where(installed_packs.c.org_id == org_id).order_by(installed_packs.c.name)
    return list((await session.execute(statement)).scalars())


async def save_pack(session: AsyncConnection, values: dict[str, Any]) -> PackRow:
    """Insert the pack's record, or bring an existing one to this install (same org and name)."""
    statement = pg_insert(installed_packs).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[installed_packs.c.org_id, installed_packs.c.name],
        set_={"version": statement.excluded.version, "document": statement.excluded.document,
              "owned_roles": statement.excluded.owned_roles, "owned_policies": statement.excluded.owned_policies,
              "updated_at": sa.func.clock_timestamp()},
    ).returning(*installed_packs.c)
    return PackRow(*(await session.execute(statement)).one())


async def delete_pack(session: AsyncConnection, org_id: UUID, name: str) -> None:
    await session.execute(
        installed_packs.delete().where(installed_packs.c.org_id == org_id, installed_packs.c.name == name)
    )


async def role_holders(session: AsyncConnection, org_id: UUID, role: str) -> int:
    """Members holding the role, plus open invitations that would give it."""
    members = sa.select(sa.func.count()).where(memberships.c.org_id == org_id, memberships.c.role == role)
    pending = sa.select(sa.func.count()).where(
        invites.c.org_id == org_id, invites.c.role == role, invites.c.accepted_at.is_(None),
        invites.c.expires_at > sa.func.now(),
    )
    return int((await session.execute(members)).scalar_one()) + int((await session.execute(pending)).scalar_one())


async def delete_role(session: AsyncConnection, org_id: UUID, name: str) -> None:
    """The role and every policy of it."""
    await session.execute(policies.delete().where(policies.c.org_id == org_id, policies.c.role == name))
    await session.execute(roles.delete().where(roles.c.org_id == org_id, roles.c.name == name))


async def delete_policies(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> None:
    if ids:
        await session.execute(policies.delete().where(policies.c.org_id == org_id, policies.c.id.in_(list(ids))))
