"""The SQL of re-sealing two-factor secrets sealed before envelope encryption (`keys.py`), under platform access."""

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_LEGACY = sa.text(
    "SELECT person_id, secret_sealed FROM tenancy.two_factor WHERE get_byte(secret_sealed, 0) = 1"
    " AND person_id > :after ORDER BY person_id LIMIT :n FOR UPDATE SKIP LOCKED"
)
_RESEAL = sa.text("UPDATE tenancy.two_factor SET secret_sealed = :sealed WHERE person_id = :person")


async def legacy_two_factor(session: AsyncConnection, after: UUID, batch: int) -> list[tuple[UUID, bytes]]:
    """The next `batch` secrets sealed the old way (first byte 1), by person id after `after`."""
    params = {"n": batch, "after": after}
    return [(row.person_id, bytes(row.secret_sealed)) for row in await session.execute(_LEGACY, params)]


async def reseal_two_factor(session: AsyncConnection, person_id: UUID, sealed: bytes) -> None:
    await session.execute(_RESEAL, {"person": person_id, "sealed": sealed})
