"""Every SQL statement about organizations, people, memberships and invites; always org-scoped.

Row-Level Security backs each org filter up. `platform_access` widens a
transaction to every org for exactly one block: lookups that must happen before
an org is known (a key's or invite's row, signup's email check) and a platform
owner's listing. `switch_org` moves a platform owner's transaction to the org it
works on, so RLS confines that work to it.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy.models import invites, memberships, organizations, people
from shared.kernel.errors import Conflict

_SET_ORG = sa.text("SELECT set_config('app.org_id', :org_id, true)")
_SET_PLATFORM = sa.text("SELECT set_config('app.platform_access', :on, true)")

Row = sa.Row[Any]


@asynccontextmanager
async def platform_access(session: AsyncConnection) -> AsyncIterator[None]:
    await session.execute(_SET_PLATFORM, {"on": "on"})
    try:
        yield
    finally:
        await session.execute(_SET_PLATFORM, {"on": "off"})


async def switch_org(session: AsyncConnection, org_id: UUID) -> None:
    await session.execute(_SET_ORG, {"org_id": str(org_id)})


async def insert_unique(session: AsyncConnection, table: sa.Table, values: dict[str, Any], what: str) -> None:
    try:
        async with session.begin_nested():
            await session.execute(table.insert().values(**values))
    except IntegrityError as error:
        detail = str(error.orig).split("DETAIL:")[-1].strip() if error.orig else ""
        raise Conflict(f"{what} already exists", {"detail": detail[:200]}) from None


async def insert_org(session: AsyncConnection, values: dict[str, Any]) -> None:
    await insert_unique(session, organizations, values, "an organization with this slug or domain")


async def get_org(session: AsyncConnection, org_id: UUID, *, for_update: bool = False) -> Row | None:
    statement = sa.select(organizations).where(organizations.c.id == org_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).first()


async def find_org_by_slug(session: AsyncConnection, slug: str) -> Row | None:
    """Needs `platform_access`: signup looks an org up before belonging to it."""
    return (await session.execute(sa.select(organizations).where(organizations.c.slug == slug))).first()


async def find_platform_org(session: AsyncConnection) -> Row | None:
    """Needs `platform_access`."""
    return (await session.execute(sa.select(organizations).where(organizations.c.is_platform))).first()


async def update_org(session: AsyncConnection, org_id: UUID, values: dict[str, Any]) -> None:
    statement = organizations.update().where(organizations.c.id == org_id).values(**values, updated_at=sa.func.now())
    try:
        async with session.begin_nested():
            await session.execute(statement)
    except IntegrityError:
        raise Conflict("another organization already uses this domain") from None


async def list_orgs(session: AsyncConnection, limit: int, offset: int) -> Sequence[Row]:
    """Needs `platform_access`: only a platform owner lists across orgs."""
    statement = sa.select(organizations).order_by(organizations.c.created_at, organizations.c.id).limit(limit).offset(offset)
    return (await session.execute(statement)).all()


async def insert_person(session: AsyncConnection, values: dict[str, Any]) -> None:
    await insert_unique(session, people, values, "a person with this email or username")


async def get_person(session: AsyncConnection, person_id: UUID) -> Row | None:
    """Visible only when the person is a member of the transaction's org (or under platform access)."""
    return (await session.execute(sa.select(people).where(people.c.id == person_id))).first()


async def find_person_by_email(session: AsyncConnection, email: str) -> Row | None:
    """Needs `platform_access`: an invitee may already exist in another org."""
    return (await session.execute(sa.select(people).where(people.c.email == email))).first()


async def update_person(session: AsyncConnection, person_id: UUID, values: dict[str, Any]) -> None:
    try:
        async with session.begin_nested():
            await session.execute(people.update().where(people.c.id == person_id).values(**values, updated_at=sa.func.now()))
    except IntegrityError:
        raise Conflict("another person already uses this username") from None


async def org_ids_of(session: AsyncConnection, person_id: UUID) -> list[UUID]:
    """Needs `platform_access`: a person's own memberships in every org."""
    statement = sa.select(memberships.c.org_id).where(memberships.c.person_id == person_id).order_by(memberships.c.joined_at)
    return list((await session.execute(statement)).scalars())


async def actor_in_org(session: AsyncConnection, org_id: UUID, person_id: UUID) -> Row | None:
    """The person's platform role and their membership in this org, in one round trip."""
    statement = (
        sa.select(people.c.id, people.c.role.label("person_role"), people.c.email_verified_at, memberships.c.role,
                  memberships.c.permissions)
        .join(memberships, memberships.c.person_id == people.c.id)
        .where(memberships.c.org_id == org_id, people.c.id == person_id)
    )
    return (await session.execute(statement)).first()


async def insert_membership(session: AsyncConnection, values: dict[str, Any]) -> None:
    await insert_unique(session, memberships, values, "this membership")


async def get_membership(session: AsyncConnection, org_id: UUID, person_id: UUID, *, for_update: bool = False) -> Row | None:
    statement = sa.select(memberships).where(memberships.c.org_id == org_id, memberships.c.person_id == person_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).first()


async def list_members(session: AsyncConnection, org_id: UUID) -> Sequence[Row]:
    statement = (
        sa.select(memberships, people.c.email, people.c.username, people.c.display_name)
        .join(people, people.c.id == memberships.c.person_id)
        .where(memberships.c.org_id == org_id)
        .order_by(memberships.c.joined_at)
    )
    return (await session.execute(statement)).all()


async def update_membership(session: AsyncConnection, org_id: UUID, person_id: UUID, values: dict[str, Any]) -> None:
    await session.execute(
        memberships.update()
        .where(memberships.c.org_id == org_id, memberships.c.person_id == person_id)
        .values(**values)
    )


async def delete_membership(session: AsyncConnection, org_id: UUID, person_id: UUID) -> None:
    await session.execute(
        memberships.delete().where(memberships.c.org_id == org_id, memberships.c.person_id == person_id)
    )


async def count_owners(session: AsyncConnection, org_id: UUID) -> int:
    statement = sa.select(sa.func.count()).where(memberships.c.org_id == org_id, memberships.c.role == "org_owner")
    return (await session.execute(statement)).scalar_one()


async def insert_invite(session: AsyncConnection, values: dict[str, Any]) -> None:
    await session.execute(invites.insert().values(**values))


async def get_invite(session: AsyncConnection, invite_id: UUID, *, for_update: bool = False) -> Row | None:
    """Needs `platform_access` when the invitee has no org context yet."""
    statement = sa.select(invites).where(invites.c.id == invite_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).first()


async def mark_invite_accepted(session: AsyncConnection, org_id: UUID, invite_id: UUID, person_id: UUID) -> None:
    await session.execute(
        invites.update()
        .where(invites.c.org_id == org_id, invites.c.id == invite_id)
        .values(accepted_at=sa.func.now(), accepted_by=person_id)
    )


async def list_pending_invites(session: AsyncConnection, org_id: UUID) -> Sequence[Row]:
    statement = (
        sa.select(invites)
        .where(invites.c.org_id == org_id, invites.c.accepted_at.is_(None), invites.c.expires_at > sa.func.now())
        .order_by(invites.c.invited_at)
    )
    return (await session.execute(statement)).all()


async def lock_bootstrap(session: AsyncConnection) -> None:
    """Serialises concurrent bootstraps (several processes starting at once) until commit."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('tenancy.bootstrap'))"))


async def find_platform_owner(session: AsyncConnection, org_id: UUID) -> Row | None:
    statement = (
        sa.select(people)
        .join(memberships, memberships.c.person_id == people.c.id)
        .where(memberships.c.org_id == org_id, people.c.role == "platform_owner")
        .order_by(memberships.c.joined_at)
        .limit(1)
    )
    return (await session.execute(statement)).first()
