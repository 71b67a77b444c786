"""The graph statements run on the driver (services/graph/repository.py, shared/runtime/sql.py) give what their
SQLAlchemy Core forms gave: the same rows, with the same Python types, the same absences and the same errors.

The Core forms are kept here, as they were in the repository, and both run against the real database, in
transactions of the org (Row-Level Security on), and through a role that bypasses it, to see the org filter alone.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.graph import repository as repo
from services.graph.models import connections, things
from services.graph.repository_access import ScopeSql, scope_condition
from services.graph.rows import ConnectionRow, NewThing, ThingRow
from shared.kernel.errors import Conflict
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.db import Database, app_url, plain_url

# ---- the SQLAlchemy Core forms, as the repository had them ----------------------------------------------------------


async def core_get_thing(session: AsyncConnection, org_id: UUID, thing_id: UUID, *, for_update: bool = False) -> ThingRow | None:
    statement = sa.select(things).where(things.c.org_id == org_id, things.c.id == thing_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return None if row is None else ThingRow(*row)


async def core_things_by_keys(session: AsyncConnection, org_id: UUID, keys: Sequence[str]) -> list[ThingRow]:
    statement = sa.select(things).where(things.c.org_id == org_id, things.c.idempotency_key.in_(list(keys)))
    return [ThingRow(*row) for row in await session.execute(statement)]


async def core_live_thing_ids(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> set[UUID]:
    statement = sa.select(things.c.id).where(
        things.c.org_id == org_id, things.c.id.in_(list(ids)), things.c.deleted_at.is_(None)
    )
    return set((await session.execute(statement)).scalars())


async def core_insert_connection(session: AsyncConnection, values: dict[str, Any]) -> ConnectionRow:
    try:
        return ConnectionRow(*(await session.execute(sa.insert(connections).returning(connections), values)).one())
    except IntegrityError as error:
        if getattr(error.orig, "sqlstate", None) != "23505":
            raise
        raise Conflict(f"a live {values['type']} link between these things exists already",
                       {"from_id": str(values["from_id"]), "to_id": str(values["to_id"])}) from None


async def core_get_connection(session: AsyncConnection, org_id: UUID, connection_id: UUID) -> ConnectionRow | None:
    statement = sa.select(connections).where(connections.c.org_id == org_id, connections.c.id == connection_id)
    row = (await session.execute(statement.with_for_update())).first()
    return None if row is None else ConnectionRow(*row)


async def core_related_things(
    session: AsyncConnection, org_id: UUID, thing_id: UUID, types: Sequence[str], visible: ScopeSql | None = None
) -> list[tuple[ConnectionRow, ThingRow]]:
    other = sa.case((connections.c.from_id == thing_id, connections.c.to_id), else_=connections.c.from_id)
    statement = (
        sa.select(*[c.label(f"c_{c.name}") for c in connections.columns], *[c.label(f"t_{c.name}") for c in things.columns])
        .join_from(connections, things, sa.and_(things.c.org_id == org_id, things.c.id == other, things.c.deleted_at.is_(None)))
        .where(
            connections.c.org_id == org_id,
            sa.or_(connections.c.from_id == thing_id, connections.c.to_id == thing_id),
            connections.c.type.in_(list(types)),
            connections.c.valid_to.is_(None) | (connections.c.valid_to > sa.func.now()),
            *([visible.clause()] if visible is not None else []),
        )
        .order_by(connections.c.id)
    )
    split = len(connections.columns)
    return [(ConnectionRow(*row[:split]), ThingRow(*row[split:])) for row in await session.execute(statement)]


# ---- fixtures -------------------------------------------------------------------------------------------------------

NESTED = {"title": "Nested", "price": {"amount": 1250, "currency": "USD"}, "tags": ["a", "b", {"deep": [1, 2.5, None]}],
          "availability": {"quantity": 3, "status": "in_stock"}, "unicode": "é ✓", "empty": {}}


@dataclass
class Graph:
    """Two orgs' things and links; `mine` is the org every read is made in."""

    mine: UUID
    theirs: UUID
    actor: UUID
    nested: UUID
    plain: UUID
    deleted: UUID
    foreign: UUID
    foreign_link: UUID


@dataclass
class Databases:
    app: Database
    bypass: Database
    """A role Row-Level Security does not apply to (the suite's admin, a superuser): the org filter alone."""


@pytest.fixture
async def dbs(migrated: Settings) -> AsyncIterator[Databases]:
    admin = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        bypasses = await admin.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    finally:
        await admin.close()
    assert bypasses, "the suite's admin role is expected to bypass Row-Level Security"
    found = Databases(Database(app_url(migrated), pool_size=1), Database(migrated.database_url, pool_size=1))
    try:
        yield found
    finally:
        await found.app.dispose()
        await found.bypass.dispose()


def _new(org_id: UUID, name: str, properties: dict[str, Any], key: str | None, created_by: UUID | None) -> NewThing:
    return NewThing(uuid7(), org_id, "product", name, properties, "active", 1, key, f"hash-{key}" if key else None,
                    created_by)


@pytest.fixture
async def graph(dbs: Databases) -> Graph:
    mine, theirs, actor = uuid7(), uuid7(), uuid7()
    nested, plain, deleted = (_new(mine, "nested", NESTED, "key-nested", actor), _new(mine, "plain", {}, None, None),
                              _new(mine, "deleted", {"x": 1}, "key-deleted", actor))
    foreign = _new(theirs, "foreign", {"secret": "theirs"}, "key-nested", None)  # the same key as one of mine
    foreign_end = _new(theirs, "end", {}, None, None)
    async with dbs.app.transaction(mine) as session:
        await repo.insert_things(session, [nested, plain, deleted])
        await repo.update_thing(session, mine, deleted.id, {"deleted_at": repo.NOW}, None)
    async with dbs.app.transaction(theirs) as session:
        await repo.insert_things(session, [foreign, foreign_end])
        link = await repo.insert_connection(session, {"id": uuid7(), "org_id": theirs, "from_id": foreign.id,
                                                      "to_id": foreign_end.id, "type": "references", "metadata": {}})
    return Graph(mine, theirs, actor, nested.id, plain.id, deleted.id, foreign.id, link.id)


def _types(row: Any) -> list[type]:
    return [type(getattr(row, f.name)) for f in fields(row)]


def _same(driver: Any, core: Any) -> None:
    """Equal values of equal types, field by field (a Decimal is not a float, an asyncpg UUID is a uuid.UUID)."""
    assert driver == core
    assert _types(driver) == _types(core)


# ---- the tests ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("for_update", [False, True])
async def test_get_thing_reads_what_core_read(dbs: Databases, graph: Graph, for_update: bool) -> None:
    async with dbs.app.transaction(graph.mine) as session:
        for thing_id in (graph.nested, graph.plain, graph.deleted):
            row = await repo.get_thing(session, graph.mine, thing_id, for_update=for_update)
            assert row is not None
            _same(row, await core_get_thing(session, graph.mine, thing_id, for_update=for_update))
        nested = await repo.get_thing(session, graph.mine, graph.nested, for_update=for_update)
        assert nested is not None and nested.properties == NESTED and isinstance(nested.id, UUID)
        assert nested.created_by == graph.actor and nested.idempotency_key == "key-nested" and nested.deleted_at is None
        assert nested.created_at.tzinfo is not None
        deleted = await repo.get_thing(session, graph.mine, graph.deleted, for_update=for_update)
        assert deleted is not None and deleted.deleted_at is not None and deleted.version == 2
        for org_id, thing_id in ((graph.mine, graph.foreign), (graph.theirs, graph.foreign), (graph.mine, uuid7())):
            assert await repo.get_thing(session, org_id, thing_id, for_update=for_update) is None
            assert await core_get_thing(session, org_id, thing_id, for_update=for_update) is None
    async with dbs.bypass.transaction(graph.mine) as session:  # no RLS: the org filter alone keeps it out
        assert await repo.get_thing(session, graph.mine, graph.foreign, for_update=for_update) is None
        assert await repo.get_thing(session, graph.theirs, graph.foreign, for_update=for_update) is not None


async def test_get_thing_for_update_locks_the_row(dbs: Databases, graph: Graph, migrated: Settings) -> None:
    async with dbs.app.transaction(graph.mine) as session:
        assert await repo.get_thing(session, graph.mine, graph.nested, for_update=True) is not None
        other = await asyncpg.connect(plain_url(app_url(migrated)))
        try:
            async with other.transaction():
                await other.execute(f"SELECT set_config('app.org_id', '{graph.mine}', true)")
                lock = "SELECT id FROM graph.things WHERE id = $1 FOR UPDATE SKIP LOCKED"
                locked, free = await other.fetch(lock, graph.nested), await other.fetch(lock, graph.plain)
        finally:
            await other.close()
    assert locked == [] and [r["id"] for r in free] == [graph.plain]


async def test_things_by_keys_finds_what_core_found(dbs: Databases, graph: Graph) -> None:
    keys = ["key-nested", "key-deleted", "no-such-key"]
    async with dbs.app.transaction(graph.mine) as session:
        rows = sorted(await repo.things_by_keys(session, graph.mine, keys), key=lambda r: r.id)
        core = sorted(await core_things_by_keys(session, graph.mine, keys), key=lambda r: r.id)
        assert [r.id for r in rows] == sorted([graph.nested, graph.deleted])  # a deleted thing keeps its key
        for driver, expected in zip(rows, core, strict=True):
            _same(driver, expected)
        assert await repo.things_by_keys(session, graph.mine, []) == []
        assert await core_things_by_keys(session, graph.mine, []) == []
        assert await repo.things_by_keys(session, graph.theirs, keys) == []  # RLS: their "key-nested" is not seen
    async with dbs.bypass.transaction(graph.mine) as session:
        assert [r.id for r in await repo.things_by_keys(session, graph.mine, ["key-nested"])] == [graph.nested]
        assert [r.id for r in await repo.things_by_keys(session, graph.theirs, ["key-nested"])] == [graph.foreign]


async def test_live_thing_ids_skip_deleted_foreign_and_missing_things(dbs: Databases, graph: Graph) -> None:
    asked = [graph.nested, graph.plain, graph.deleted, graph.foreign, uuid7()]
    async with dbs.app.transaction(graph.mine) as session:
        found = await repo.live_thing_ids(session, graph.mine, asked)
        assert found == await core_live_thing_ids(session, graph.mine, asked) == {graph.nested, graph.plain}
        assert all(isinstance(i, UUID) for i in found)
        assert await repo.live_thing_ids(session, graph.mine, []) == set()
        assert await repo.live_thing_ids(session, graph.theirs, asked) == set()
    async with dbs.bypass.transaction(graph.mine) as session:
        assert await repo.live_thing_ids(session, graph.mine, asked) == {graph.nested, graph.plain}
        assert await repo.live_thing_ids(session, graph.theirs, asked) == {graph.foreign}


@pytest.mark.parametrize("strength", [None, 0.5, 0.1, Decimal("0.25")])
async def test_insert_connection_stores_and_returns_what_core_did(dbs: Databases, graph: Graph, strength: Any) -> None:
    def values(**extra: Any) -> dict[str, Any]:
        return {"id": uuid7(), "org_id": graph.mine, "from_id": graph.nested, "to_id": graph.plain,
                "type": "references", "metadata": {"protocol": "acp", "nested": {"a": [1, {"b": None}]}},
                "strength": strength, "valid_to": None, **extra}

    async with dbs.app.transaction(graph.mine) as session:
        made = await repo.insert_connection(session, values())
        core_made = await core_insert_connection(session, values())
        _same(made, await core_get_connection(session, graph.mine, made.id))  # what it returned is what is stored
        assert _types(made) == _types(core_made)
        assert (made.metadata, made.strength) == (core_made.metadata, core_made.strength)
        assert made.strength is None if strength is None else isinstance(made.strength, Decimal)
        # a float is stored as its exact binary value (0.1 as 0.1000000000000000055511151231257827...), as it was
        # through SQLAlchemy (asyncpg encodes both); `to_connection`'s float() gives the float back
        assert made.strength == (None if strength is None else Decimal(strength))
        assert strength is None or float(made.strength) == float(strength)
        # the columns a caller gives: a start of validity (identity's mirror), or none of the optional ones (social)
        start = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        started = await repo.insert_connection(session, values(valid_from=start, valid_to=start + timedelta(days=1)))
        assert (started.valid_from, started.valid_to) == (start, start + timedelta(days=1))
        bare = {k: v for k, v in values().items() if k not in ("strength", "valid_to")}
        minimal = await repo.insert_connection(session, bare)
        _same(minimal, await core_get_connection(session, graph.mine, minimal.id))
        assert minimal.strength is None and minimal.valid_to is None and minimal.valid_from is not None


async def test_a_second_live_link_is_the_same_conflict(dbs: Databases, graph: Graph) -> None:
    def follow() -> dict[str, Any]:
        return {"id": uuid7(), "org_id": graph.mine, "from_id": graph.nested, "to_id": graph.plain, "type": "following",
                "metadata": {}}

    async with dbs.app.transaction(graph.mine) as session:
        await repo.insert_connection(session, follow())
    raised: list[Conflict] = []
    for insert in (repo.insert_connection, core_insert_connection):
        with pytest.raises(Conflict) as conflict:
            async with dbs.app.transaction(graph.mine) as session:
                await insert(session, follow())
        raised.append(conflict.value)
    driver, core = raised
    assert (type(driver), driver.code, driver.message) == (type(core), core.code, core.message)
    assert driver.details == core.details
    assert driver.message == "a live following link between these things exists already"
    assert driver.details == {"from_id": str(graph.nested), "to_id": str(graph.plain)}
    assert driver.__cause__ is None and driver.__suppress_context__


async def test_other_errors_of_an_insert_are_not_conflicts(dbs: Databases, graph: Graph) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):  # an end in another org: the composite foreign key
        async with dbs.app.transaction(graph.mine) as session:
            await repo.insert_connection(session, {"id": uuid7(), "org_id": graph.mine, "from_id": graph.nested,
                                                   "to_id": graph.foreign, "type": "references", "metadata": {}})
    with pytest.raises(ValueError, match="not columns of graph.connections: nope"):
        async with dbs.app.transaction(graph.mine) as session:
            await repo.insert_connection(session, {"id": uuid7(), "org_id": graph.mine, "nope": 1})


async def test_get_connection_reads_and_locks_what_core_did(dbs: Databases, graph: Graph) -> None:
    async with dbs.app.transaction(graph.mine) as session:
        made = await repo.insert_connection(session, {
            "id": uuid7(), "org_id": graph.mine, "from_id": graph.plain, "to_id": graph.nested, "type": "owns",
            "metadata": {"revenueShare": 0.3}, "strength": 0.5})
    async with dbs.app.transaction(graph.mine) as session:
        row = await repo.get_connection(session, graph.mine, made.id)
        assert row is not None
        _same(row, made)
        _same(row, await core_get_connection(session, graph.mine, made.id))
        assert row.strength == Decimal("0.5") and float(row.strength) == 0.5
        for org_id, connection_id in ((graph.mine, graph.foreign_link), (graph.theirs, graph.foreign_link),
                                      (graph.mine, uuid7())):
            assert await repo.get_connection(session, org_id, connection_id) is None
            assert await core_get_connection(session, org_id, connection_id) is None
    async with dbs.bypass.transaction(graph.mine) as session:
        assert await repo.get_connection(session, graph.mine, graph.foreign_link) is None
        assert await repo.get_connection(session, graph.theirs, graph.foreign_link) is not None


@dataclass(frozen=True)
class _Rule:
    thing_type: str
    rule: str
    connection_type: str | None
    effect: str


async def test_related_things_are_what_core_related(dbs: Databases, graph: Graph) -> None:
    async with dbs.app.transaction(graph.mine) as session:
        extra = _new(graph.mine, "extra", {"n": 1}, None, graph.actor)
        await repo.insert_things(session, [extra])
        made = []
        for from_id, to_id, type_, valid_to in (
            (graph.nested, graph.plain, "references", None), (graph.plain, graph.nested, "owns", None),
            (graph.nested, extra.id, "references", None), (graph.nested, graph.deleted, "references", None),
            (graph.nested, extra.id, "owns", datetime.now(UTC) - timedelta(seconds=1)),  # ended (valid_to in the past)
            (graph.nested, extra.id, "owns", datetime.now(UTC) + timedelta(days=1)),  # ends later: current
            (graph.nested, graph.nested, "references", None),  # a self link: the other end is the thing itself
        ):
            values = {"id": uuid7(), "org_id": graph.mine, "from_id": from_id, "to_id": to_id, "type": type_,
                      "metadata": {"k": type_}, "strength": 0.5 if type_ == "owns" else None}
            if valid_to is not None:
                values |= {"valid_from": valid_to - timedelta(days=2), "valid_to": valid_to}
            made.append(await repo.insert_connection(session, values))
    own = scope_condition([_Rule("*", "own", None, "allow")], graph.actor, "things")
    deny_products = scope_condition([_Rule("product", "all", None, "deny")], graph.actor, "things")
    async with dbs.app.transaction(graph.mine) as session:
        for types in (["references", "owns"], ["owns"], ["references"], [], ["teaching"]):
            for visible in (None, own, deny_products):
                pairs = await repo.related_things(session, graph.mine, graph.nested, types, visible)
                core = await core_related_things(session, graph.mine, graph.nested, types, visible)
                assert len(pairs) == len(core)
                for (connection, thing), (core_connection, core_thing) in zip(pairs, core, strict=True):
                    _same(connection, core_connection)
                    _same(thing, core_thing)
        everything = await repo.related_things(session, graph.mine, graph.nested, ["references", "owns"])
        current = sorted((made[i] for i in (0, 1, 2, 5, 6)), key=lambda c: c.id)  # no deleted end, no ended link
        assert [c.id for c, _ in everything] == [c.id for c in current]  # in id order
        assert [t.id for _, t in everything] == [c.to_id if c.from_id == graph.nested else c.from_id for c in current]
        assert next(t for c, t in everything if c.id == made[6].id).properties == NESTED  # the self link's end
        owned = await repo.related_things(session, graph.mine, graph.nested, ["references", "owns"], own)
        assert {t.id for _, t in owned} == {extra.id, graph.nested}  # created by the actor
        assert await repo.related_things(session, graph.mine, graph.nested, ["references"], deny_products) == []
        assert await repo.related_things(session, graph.theirs, graph.foreign, ["references"]) == []
    async with dbs.bypass.transaction(graph.mine) as session:
        assert await repo.related_things(session, graph.mine, graph.foreign, ["references"]) == []
        assert len(await repo.related_things(session, graph.theirs, graph.foreign, ["references"])) == 1
