"""Row-Level Security confines every query to the transaction's org, even one that forgets its filter."""

import asyncpg
import pytest
from sqlalchemy import text

from shared.kernel.envelope import AuthContext
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.db import Database, app_url, plain_url
from tests.probe.app import NOTE_CREATE, NOTE_LIST

pytestmark = pytest.mark.usefixtures("services")


async def test_query_without_org_filter_sees_only_its_own_org(
    bus: BusClient, org: AuthContext, other_org: AuthContext
) -> None:
    mine = await bus.request(NOTE_CREATE, {"body": "mine"}, org)
    theirs = await bus.request(NOTE_CREATE, {"body": "theirs"}, other_org)
    listed = await bus.request(NOTE_LIST, {}, org)
    assert [n.id for n in listed.notes] == [mine.id]
    listed = await bus.request(NOTE_LIST, {}, other_org)
    assert [n.id for n in listed.notes] == [theirs.id]


async def test_no_tenant_set_means_no_rows(bus: BusClient, org: AuthContext, migrated: Settings) -> None:
    await bus.request(NOTE_CREATE, {"body": "hidden"}, org)
    db = Database(app_url(migrated), pool_size=1)
    try:
        async with db.transaction() as session:  # fail closed: no app.org_id
            assert (await session.execute(text("SELECT count(*) FROM probe.notes"))).scalar_one() == 0
        async with db.transaction(org.org_id) as session:  # a later transaction on the same pooled connection
            assert (await session.execute(text("SELECT count(*) FROM probe.notes"))).scalar_one() == 1
        async with db.transaction() as session:  # the setting did not leak past that transaction
            assert (await session.execute(text("SELECT count(*) FROM probe.notes"))).scalar_one() == 0
    finally:
        await db.dispose()


async def test_cannot_write_a_row_for_another_org(org: AuthContext, other_org: AuthContext, migrated: Settings) -> None:
    db = Database(app_url(migrated), pool_size=1)
    try:
        with pytest.raises(Exception, match="row-level security"):
            async with db.transaction(org.org_id) as session:
                await session.execute(
                    text("INSERT INTO probe.notes (id, org_id, body) VALUES (gen_random_uuid(), :other, 'x')"),
                    {"other": other_org.org_id},
                )
    finally:
        await db.dispose()


async def test_app_role_is_neither_superuser_nor_owner(migrated: Settings) -> None:
    conn = await asyncpg.connect(plain_url(app_url(migrated)))
    try:
        role = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert role["rolsuper"] is False and role["rolbypassrls"] is False
        owner = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE schemaname = 'probe' AND tablename = 'notes'")
        assert owner != migrated.db_app_role
    finally:
        await conn.close()
