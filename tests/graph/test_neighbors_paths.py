"""A traversal's two paths give the same walk (services/graph/repository.py): `neighbors_alone`, the lone statement
calling `graph.neighbors` (migration v0010) for a caller no scope rule restricts, and `neighbors`, the statement a
scoped caller's transaction runs. Every direction, depth, type filter, point in time and limit, over a graph with a
cycle, a deleted thing, an ended link and another org's things, against the real database with Row-Level Security on.
"""

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from services.graph import repository as repo
from services.graph.rows import NewThing
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.db import Database, app_url

_LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class Walkable:
    org: UUID
    ids: dict[str, UUID]
    foreign_start: UUID
    between: datetime
    """After the old links began and the ended one ended, before the new link began."""


@pytest.fixture
async def db(migrated: Settings) -> AsyncIterator[Database]:
    database = Database(app_url(migrated), pool_size=2, service="neighbors-paths")
    yield database
    await database.dispose()


def _thing(org: UUID, name: str) -> NewThing:
    return NewThing(uuid7(), org, "lesson", name, {"n": name}, "draft", 1, None, None)


@pytest.fixture
async def walkable(db: Database) -> Walkable:
    """a → b → c → a (a cycle), b → d (references), a → e (ended), e → f, c → x (x deleted), g → a (only `in`
    reaches g), and h ← a made after `between`; another org's p → q."""
    org, theirs = uuid7(), uuid7()
    things = {name: _thing(org, name) for name in "abcdefghx"}
    ids = {name: thing.id for name, thing in things.items()}
    now = datetime.now(UTC)
    between = now - timedelta(days=1)
    links = [("a", "b", "part_of", None, None), ("b", "c", "part_of", None, None), ("c", "a", "part_of", None, None),
             ("b", "d", "references", None, None), ("a", "e", "part_of", None, between - timedelta(days=1)),
             ("e", "f", "part_of", None, None), ("c", "x", "part_of", None, None), ("g", "a", "references", None, None),
             ("a", "h", "references", now, None)]
    async with db.transaction(org) as session:
        await repo.insert_things(session, list(things.values()))
        await repo.update_thing(session, org, ids["x"], {"deleted_at": repo.NOW}, None)
        for source, target, kind, valid_from, valid_to in links:
            await repo.insert_connection(session, {
                "id": uuid7(), "org_id": org, "from_id": ids[source], "to_id": ids[target], "type": kind, "metadata": {},
                "valid_from": valid_from or _LONG_AGO, "valid_to": valid_to})
    p, q = _thing(theirs, "p"), _thing(theirs, "q")
    async with db.transaction(theirs) as session:
        await repo.insert_things(session, [p, q])
        await repo.insert_connection(session, {"id": uuid7(), "org_id": theirs, "from_id": p.id, "to_id": q.id,
                                               "type": "part_of", "metadata": {}})
    return Walkable(org, ids, p.id, between)


async def _both(db: Database, org: UUID, start: UUID, **shape: object) -> tuple[list, list]:
    walk = repo.Walk(**{"depth": 2, "direction": "out", "types": [], "as_of": None, "limit": 1000, **shape})
    alone = await repo.neighbors_alone(db, org, start, walk, timeout=10)
    async with db.transaction(org) as session:
        in_transaction = await repo.neighbors(session, org, start, walk)
    return alone, in_transaction


async def test_both_paths_walk_alike(db: Database, walkable: Walkable) -> None:
    shapes = itertools.product(["out", "in", "both"], [1, 2, 3], [[], ["part_of"], ["part_of", "references"]],
                               [None, walkable.between], [1000, 2])
    for direction, depth, types, as_of, limit in shapes:
        for start in ("a", "b", "x"):
            walk = {"depth": depth, "direction": direction, "types": types, "as_of": as_of, "limit": limit}
            alone, in_transaction = await _both(db, walkable.org, walkable.ids[start], **walk)
            assert alone == in_transaction, (start, walk)


async def test_the_walk_is_what_the_graph_says(db: Database, walkable: Walkable) -> None:
    """Not only alike: right. The start first at depth 0; each thing once, at its shortest distance; the deleted x
    neither shown nor walked through; the ended link only before it ended; `in` reaches g."""
    ids, names = walkable.ids, {v: k for k, v in walkable.ids.items()}

    async def walk(**shape: object) -> list[tuple[str, int]]:
        alone, _ = await _both(db, walkable.org, ids["a"], **shape)
        assert alone == sorted(alone, key=lambda found: (found[1], found[0].id))  # by depth, then id
        return sorted((names[row.id], depth) for row, depth in alone)

    assert await walk() == [("a", 0), ("b", 1), ("c", 2), ("d", 2), ("e", 1), ("f", 2), ("h", 1)]
    assert await walk(as_of=walkable.between) == [("a", 0), ("b", 1), ("c", 2), ("d", 2)]
    assert await walk(types=["references"]) == [("a", 0), ("h", 1)]
    assert await walk(direction="in", depth=1) == [("a", 0), ("c", 1), ("g", 1)]
    assert await walk(depth=6) == await walk(depth=2)  # the cycle back to a ends the walk; x is not walked through
    assert len(await walk(limit=2)) == 3  # the start and one more than the limit: the caller sees there are more


async def test_another_orgs_things_are_neither_start_nor_step(db: Database, walkable: Walkable) -> None:
    alone, in_transaction = await _both(db, walkable.org, walkable.foreign_start, direction="both")
    assert alone == in_transaction == []
    # the tenant the function sets is the org it is given, and that org has no thing a
    assert await _both(db, uuid7(), walkable.ids["a"], direction="both") == ([], [])
