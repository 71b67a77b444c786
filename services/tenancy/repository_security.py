"""Every SQL statement about email verification and two-factor state; org- or person-scoped, on the database clock.

Expiries and TOTP time come from Postgres (`now()`), so replicas whose clocks
disagree still agree on what has expired and which code step is current. Each
single-use thing (a token, a TOTP step, a backup code) is taken by one
conditional `UPDATE ... RETURNING`, so two racing requests cannot both use it.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tenancy.models import email_verifications, people, two_factor, two_factor_backup_codes
from services.tenancy.repository import Row

_DB_NOW = sa.extract("epoch", sa.func.now())


def _after(seconds: float) -> Any:
    return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.cast(seconds, sa.Float))


async def replace_verification(session: AsyncConnection, values: dict[str, Any], ttl_seconds: float) -> datetime:
    """A new pending token for the person in this org (earlier pending ones stop working); returns its expiry."""
    await session.execute(
        email_verifications.delete().where(
            email_verifications.c.org_id == values["org_id"], email_verifications.c.person_id == values["person_id"],
            email_verifications.c.used_at.is_(None),
        )
    )
    statement = email_verifications.insert().values(**values, expires_at=_after(ttl_seconds))
    return (await session.execute(statement.returning(email_verifications.c.expires_at))).scalar_one()


async def get_verification(session: AsyncConnection, verification_id: UUID) -> Row | None:
    """Needs `platform_access`: the token is all the caller has. Locked, with `expired` on the database clock."""
    statement = (
        sa.select(email_verifications, (email_verifications.c.expires_at <= sa.func.now()).label("expired"))
        .where(email_verifications.c.id == verification_id)
        .with_for_update()
    )
    return (await session.execute(statement)).first()


async def use_verification(session: AsyncConnection, org_id: UUID, verification_id: UUID) -> None:
    await session.execute(
        email_verifications.update()
        .where(email_verifications.c.org_id == org_id, email_verifications.c.id == verification_id)
        .values(used_at=sa.func.now())
    )


async def mark_email_verified(session: AsyncConnection, person_id: UUID, email: str) -> datetime | None:
    """Verified now (or kept from before) when the person still has `email`; None when they do not."""
    statement = (
        people.update()
        .where(people.c.id == person_id, people.c.email == email)
        .values(email_verified_at=sa.func.coalesce(people.c.email_verified_at, sa.func.now()), updated_at=sa.func.now())
        .returning(people.c.email_verified_at)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def two_factor_of(session: AsyncConnection, person_id: UUID) -> Row | None:
    """The person's two-factor row, locked (codes are taken one at a time), with `db_now` (epoch seconds)."""
    statement = (
        sa.select(two_factor, _DB_NOW.label("db_now"))
        .where(two_factor.c.person_id == person_id)
        .with_for_update()
    )
    return (await session.execute(statement)).first()


async def start_enrollment(session: AsyncConnection, person_id: UUID, secret_sealed: bytes) -> bool:
    """Store a new pending secret (replacing a pending one); False when two-factor is already enabled."""
    statement = pg_insert(two_factor).values(person_id=person_id, secret_sealed=secret_sealed)
    statement = statement.on_conflict_do_update(
        index_elements=[two_factor.c.person_id],
        set_={"secret_sealed": secret_sealed, "last_step": None, "updated_at": sa.func.now()},
        where=two_factor.c.enabled_at.is_(None),
    )
    return (await session.execute(statement.returning(two_factor.c.person_id))).first() is not None


async def enable(session: AsyncConnection, person_id: UUID, step: int) -> datetime | None:
    statement = (
        two_factor.update()
        .where(two_factor.c.person_id == person_id, two_factor.c.enabled_at.is_(None))
        .values(enabled_at=sa.func.now(), last_step=step, updated_at=sa.func.now())
        .returning(two_factor.c.enabled_at)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def take_step(session: AsyncConnection, person_id: UUID, step: int) -> bool:
    """Record `step` as used; False when it (or a later one) was used already: a replay."""
    statement = (
        two_factor.update()
        .where(two_factor.c.person_id == person_id,
               sa.or_(two_factor.c.last_step.is_(None), two_factor.c.last_step < step))
        .values(last_step=step, updated_at=sa.func.now())
        .returning(two_factor.c.person_id)
    )
    return (await session.execute(statement)).first() is not None


async def disable(session: AsyncConnection, person_id: UUID) -> None:
    await session.execute(two_factor_backup_codes.delete().where(two_factor_backup_codes.c.person_id == person_id))
    await session.execute(two_factor.delete().where(two_factor.c.person_id == person_id))


async def replace_backup_codes(session: AsyncConnection, person_id: UUID, code_hashes: Sequence[bytes]) -> None:
    await session.execute(two_factor_backup_codes.delete().where(two_factor_backup_codes.c.person_id == person_id))
    await session.execute(
        two_factor_backup_codes.insert(), [{"person_id": person_id, "code_hash": h} for h in code_hashes]
    )


async def use_backup_code(session: AsyncConnection, person_id: UUID, code_hash: bytes) -> bool:
    """Take one unused backup code; False when there is no such code or it was used."""
    statement = (
        two_factor_backup_codes.update()
        .where(two_factor_backup_codes.c.person_id == person_id, two_factor_backup_codes.c.code_hash == code_hash,
               two_factor_backup_codes.c.used_at.is_(None))
        .values(used_at=sa.func.now())
        .returning(two_factor_backup_codes.c.person_id)
    )
    return (await session.execute(statement)).first() is not None


async def unused_backup_codes(session: AsyncConnection, person_id: UUID) -> int:
    statement = sa.select(sa.func.count()).where(
        two_factor_backup_codes.c.person_id == person_id, two_factor_backup_codes.c.used_at.is_(None)
    )
    return (await session.execute(statement)).scalar_one()
