"""The event table is append-only for real: privileges for the app role, a trigger for everyone."""

import asyncpg
import pytest

from shared.kernel.envelope import AuthContext
from shared.tools.sdk.events import Events
from tests.eventlog.conftest import wait_for_events


@pytest.fixture
async def stored(events: Events, admin: asyncpg.Connection, org: AuthContext) -> None:
    await events.publish("user_login")
    await wait_for_events(admin, org.org_id, 1)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE eventlog.events SET type = 'user_logout' WHERE org_id = $1",
        "DELETE FROM eventlog.events WHERE org_id = $1",
    ],
)
async def test_app_role_cannot_change_or_remove_events(
    app_conn: asyncpg.Connection, org: AuthContext, statement: str
) -> None:
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.org_id', $1, true)", str(org.org_id))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.execute(statement, org.org_id)


async def test_app_role_cannot_truncate_events(app_conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute("TRUNCATE eventlog.events")


@pytest.mark.usefixtures("stored")
async def test_even_the_owner_cannot_update_or_delete_outside_retention(
    admin: asyncpg.Connection, org: AuthContext
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute("UPDATE eventlog.events SET type = 'user_logout' WHERE org_id = $1", org.org_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute("DELETE FROM eventlog.events WHERE org_id = $1", org.org_id)
    assert await admin.fetchval("SELECT type FROM eventlog.events WHERE org_id = $1", org.org_id) == "user_login"


async def test_app_role_cannot_rewrite_dead_letters(app_conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute("DELETE FROM eventlog.dead_letters")
