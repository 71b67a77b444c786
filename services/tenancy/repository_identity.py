"""The SQL of an org's identity snapshot: its members with their profiles, org-scoped (RLS as ever)."""

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy.models import memberships, people
from services.tenancy.repository import Row


async def members_with_profiles(session: AsyncConnection, org_id: UUID) -> Sequence[Row]:
    statement = (
        sa.select(memberships, people.c.email, people.c.username, people.c.display_name, people.c.bio, people.c.avatar)
        .join(people, people.c.id == memberships.c.person_id)
        .where(memberships.c.org_id == org_id)
        .order_by(memberships.c.joined_at)
    )
    return (await session.execute(statement)).all()
