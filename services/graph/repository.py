"""Every SQL statement of the graph; each one filters on the caller's org.

Row-Level Security (`app.org_id`, set by the handler's transaction) backs each filter up,
and the connections' composite foreign keys make a cross-org link impossible in the data.
Pages are keyset pages on `id` (UUIDv7, so creation order): no row is skipped or repeated
while others are inserted. Rows leave as the dataclasses of rows.py, never as SQLAlchemy rows.
"""

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from services.graph.models import connections, things
from services.graph.repository_access import ScopeSql
from services.graph.rows import ConnectionRow, NewThing, ThingRow
from shared.kernel.errors import Conflict
from shared.runtime.db import Database
from shared.runtime.outbox import Outbox, OutboxMessage
from shared.runtime.sql import Sql, named

NOW = sa.func.clock_timestamp()
"""The statement's own clock, for timestamps set by an update."""

_JSONPATH_OPS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """The quota lease a create's things are counted under."""

    reservation_id: UUID
    actor_id: UUID | None
    expires_at: datetime | None


async def insert_things(
    session: AsyncConnection, rows: Sequence[NewThing], counted: QuotaUse | None = None,
    events: Sequence[OutboxMessage] = (),
) -> list[ThingRow]:
    """Insert; a row whose idempotency key exists already is skipped (not returned). With `counted`, the
    number inserted is recorded under the quota lease in the same statement (`quota_pending`, see quota.py);
    `events` (one per row, in order) are staged in the outbox by the same statement, those of inserted rows only.

    One statement over arrays (`unnest`), whatever the batch size: a multi-VALUES statement
    costs SQLAlchemy more to compile than Postgres takes to run it, and each statement is a round trip.
    It returns only what the database chose (the timestamps): the rest of each row is what was sent, so the
    properties are not sent back as JSON to be parsed again.
    """
    org_id = rows[0].org_id  # sent once: a statement inserts for one org (its tenant)
    if any(row.org_id != org_id for row in rows):
        raise ValueError("the things of one insert belong to one organization")
    params: dict[str, Any] = {name: [getattr(row, name) for row in rows] for name in _INSERT_COLUMNS}
    params["org_id"] = org_id
    params["properties"] = [to_json(p).decode() for p in params["properties"]]
    if counted is not None:
        params |= {"reservation_id": counted.reservation_id, "actor_id": counted.actor_id,
                   "expires_at": counted.expires_at}
    if events:
        params |= _OUTBOX.rows_of(events)
    statement = _insert_things_statement(counted is not None, bool(events))
    by_id = {row.id: row for row in rows}
    return [_stored(by_id[thing_id], created_at, updated_at)
            for thing_id, created_at, updated_at in await named(statement).fetch(session, params)]


def _stored(new: NewThing, created_at: datetime, updated_at: datetime) -> ThingRow:
    """A row just inserted: what was sent, with the timestamps the database chose."""
    return ThingRow(new.id, new.org_id, new.type, new.name, new.properties, new.status, new.version,
                    new.idempotency_key, new.request_hash, created_at, updated_at, None, new.created_by)


_OUTBOX = Outbox("graph")
_INSERT_COLUMNS = ("id", "type", "name", "properties", "status", "version", "idempotency_key", "request_hash",
                   "created_by")
"""The columns sent as arrays, one element per row (the org is one value: each element of an array costs asyncpg an
encoding and Postgres a decoding)."""
_INSERT_SQL = """
    INSERT INTO graph.things (id, org_id, type, name, properties, status, version, idempotency_key, request_hash,
                              created_by)
    SELECT id, CAST(:org_id AS uuid), type, name, properties::jsonb, status, version, idempotency_key, request_hash,
           created_by
    FROM unnest(CAST(:id AS uuid[]), CAST(:type AS text[]), CAST(:name AS text[]),
                CAST(:properties AS text[]), CAST(:status AS text[]), CAST(:version AS int[]),
                CAST(:idempotency_key AS text[]), CAST(:request_hash AS text[]), CAST(:created_by AS uuid[]))
        AS t(id, type, name, properties, status, version, idempotency_key, request_hash, created_by)
    ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, created_at, updated_at
"""
_COUNTED_SQL = """
    INSERT INTO graph.quota_pending (reservation_id, org_id, actor_id, used, expires_at)
    SELECT CAST(:reservation_id AS uuid), CAST(:org_id AS uuid), CAST(:actor_id AS uuid), count(*),
           CAST(:expires_at AS timestamptz)
    FROM inserted HAVING count(*) > 0
"""


@functools.lru_cache(maxsize=4)
def _insert_things_statement(counted: bool, staged: bool) -> str:
    """The insert, with the quota record (`counted`) and the events of the inserted rows (`staged`: message n is
    row n's) as parts of the same statement, run on the driver (`shared.runtime.sql.named`)."""
    parts = [f"inserted AS ({_INSERT_SQL})"]
    if counted:
        parts.append(f"counted AS ({_COUNTED_SQL})")
    if staged:
        parts.append(f"staged AS ({_OUTBOX.insert_select}"
                     " WHERE (CAST(:id AS uuid[]))[m.n] IN (SELECT id FROM inserted))")
    return f"WITH {', '.join(parts)} SELECT id, created_at, updated_at FROM inserted"


_THING_COLUMNS = ", ".join(things.c.keys())
"""A thing's every column, in `ThingRow`'s field order (tests/unit/test_graph_rows.py checks that they agree)."""
_CONNECTION_COLUMNS = ", ".join(connections.c.keys())
"""A connection's every column, in `ConnectionRow`'s field order."""

# Every sale (ACP reads and updates its products), every thing read and every link made runs these: on the driver
# (shared/runtime/sql.py) each costs a fraction of SQLAlchemy's client CPU, in the same transaction.
_GET_THING = Sql(f"SELECT {_THING_COLUMNS} FROM graph.things WHERE org_id = $1 AND id = $2")
_LOCK_THING = Sql(f"{_GET_THING.text} FOR UPDATE")
_THINGS_BY_KEYS = Sql(
    f"SELECT {_THING_COLUMNS} FROM graph.things WHERE org_id = $1 AND idempotency_key = ANY($2::text[])")
_LIVE_THING_IDS = Sql("SELECT id FROM graph.things WHERE org_id = $1 AND id = ANY($2::uuid[]) AND deleted_at IS NULL")
_LOCK_CONNECTION = Sql(f"SELECT {_CONNECTION_COLUMNS} FROM graph.connections WHERE org_id = $1 AND id = $2 FOR UPDATE")


async def get_thing(session: AsyncConnection, org_id: UUID, thing_id: UUID, *, for_update: bool = False) -> ThingRow | None:
    return _thing_or_none(await (_LOCK_THING if for_update else _GET_THING).fetchrow(session, org_id, thing_id))


async def things_by_keys(session: AsyncConnection, org_id: UUID, keys: Sequence[str]) -> list[ThingRow]:
    return [ThingRow(*row) for row in await _THINGS_BY_KEYS.fetch(session, org_id, list(keys))]


async def live_thing_ids(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> set[UUID]:
    """Which of `ids` are things of this org that are not deleted."""
    return {row[0] for row in await _LIVE_THING_IDS.fetch(session, org_id, list(ids))}


async def update_thing(
    session: AsyncConnection, org_id: UUID, thing_id: UUID, values: dict[str, Any], expected_version: int | None
) -> ThingRow | None:
    """Apply `values` and bump the version; None when `expected_version` is stale."""
    conditions = [things.c.org_id == org_id, things.c.id == thing_id]
    if expected_version is not None:
        conditions.append(things.c.version == expected_version)
    statement = (
        sa.update(things)
        .where(*conditions)
        .values(**values, version=things.c.version + 1, updated_at=sa.func.clock_timestamp())
        .returning(things)
    )
    return _thing_or_none((await session.execute(statement)).first())


class _JsonPathType(sa.types.UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "jsonpath"


_JSONPATH = _JsonPathType()


def _path_condition(path: str, op: str, value: Any) -> sa.ColumnElement[bool]:
    """`eq` uses containment (served by the GIN index); the comparisons use jsonpath with the value
    passed as a variable, never spliced into the path."""
    keys = path.split(".")
    if op == "eq":
        nested: Any = value
        for key in reversed(keys):
            nested = {key: nested}
        return things.c.properties.op("@>")(sa.literal(nested, JSONB))
    jsonpath = "$" + "".join(f'."{key}"' for key in keys)
    if op == "exists":
        return sa.func.jsonb_path_exists(things.c.properties, sa.cast(jsonpath, _JSONPATH))
    if op == "contains":
        jsonpath += "[*] ? (@ == $v)"
    else:
        jsonpath += f" ? (@ {_JSONPATH_OPS[op]} $v)"
    variables = sa.func.jsonb_build_object("v", sa.literal(value, JSONB))
    return sa.func.jsonb_path_exists(things.c.properties, sa.cast(jsonpath, _JSONPATH), variables)


async def query_things(
    session: AsyncConnection,
    org_id: UUID,
    *,
    type_: str | None,
    status: str | None,
    text: str | None,
    where: Sequence[tuple[str, str, Any]],
    include_deleted: bool,
    cursor: UUID | None,
    limit: int,
    visible: ScopeSql | None = None,
) -> list[ThingRow]:
    """One page (plus one row, to tell whether there is a next page), ordered by id; `visible` is the caller's
    scope (repository_access.py), so a page is full of things it may see."""
    conditions: list[sa.ColumnElement[bool]] = [things.c.org_id == org_id]
    if visible is not None:
        conditions.append(visible.clause())
    if type_ is not None:
        conditions.append(things.c.type == type_)
    if status is not None:
        conditions.append(things.c.status == status)
    if text is not None:
        conditions.append(
            sa.func.to_tsvector(sa.literal_column("'simple'::regconfig"), things.c.name).op("@@")(
                sa.func.websearch_to_tsquery(sa.literal_column("'simple'::regconfig"), text)
            )
        )
    for path, op, value in where:
        conditions.append(_path_condition(path, op, value))
    if not include_deleted:
        conditions.append(things.c.deleted_at.is_(None))
    if cursor is not None:
        conditions.append(things.c.id > cursor)
    statement = sa.select(things).where(*conditions).order_by(things.c.id).limit(limit + 1)
    return [ThingRow(*row) for row in await session.execute(statement)]


async def insert_connection(session: AsyncConnection, values: dict[str, Any]) -> ConnectionRow:
    """Insert the columns `values` names (the others take their defaults); `Conflict` for a second live link where
    only one may live (a follow, a reaction: migration v0006)."""
    args = [json.dumps(value) if name == "metadata" else value for name, value in values.items()]
    try:
        return ConnectionRow(*(await _insert_connection_statement(tuple(values)).fetch(session, *args))[0])
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a live {values['type']} link between these things exists already",
                       {"from_id": str(values["from_id"]), "to_id": str(values["to_id"])}) from None


@functools.lru_cache(maxsize=16)
def _insert_connection_statement(names: tuple[str, ...]) -> Sql:
    """The insert of a connection given these columns (the callers give a few sets), run on the driver like the
    reads above: every link made runs it."""
    unknown = set(names) - set(connections.c.keys())
    if unknown:
        raise ValueError(f"not columns of graph.connections: {', '.join(sorted(unknown))}")
    params = ", ".join(f"${n}::jsonb" if name == "metadata" else f"${n}" for n, name in enumerate(names, 1))
    return Sql(f"INSERT INTO graph.connections ({', '.join(names)}) VALUES ({params}) RETURNING {_CONNECTION_COLUMNS}")


async def get_connection(session: AsyncConnection, org_id: UUID, connection_id: UUID) -> ConnectionRow | None:
    return _connection_or_none(await _LOCK_CONNECTION.fetchrow(session, org_id, connection_id))


async def update_connection(
    session: AsyncConnection, org_id: UUID, connection_id: UUID, values: dict[str, Any]
) -> ConnectionRow | None:
    statement = (
        sa.update(connections)
        .where(connections.c.org_id == org_id, connections.c.id == connection_id)
        .values(**values, updated_at=sa.func.clock_timestamp())
        .returning(connections)
    )
    return _connection_or_none((await session.execute(statement)).first())


async def delete_connection(session: AsyncConnection, org_id: UUID, connection_id: UUID) -> ConnectionRow | None:
    statement = (
        sa.delete(connections)
        .where(connections.c.org_id == org_id, connections.c.id == connection_id)
        .returning(connections)
    )
    return _connection_or_none((await session.execute(statement)).first())


def _valid_at(as_of: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        connections.c.valid_from <= as_of, sa.or_(connections.c.valid_to.is_(None), connections.c.valid_to > as_of)
    )


async def query_connections(
    session: AsyncConnection,
    org_id: UUID,
    thing_id: UUID,
    *,
    direction: str,
    types: Sequence[str],
    as_of: datetime | None,
    cursor: UUID | None,
    limit: int,
    visible: ScopeSql | None = None,
) -> list[ConnectionRow]:
    """A page of the thing's connections whose other end is live (and within the caller's scope, `visible` on
    the alias `live`): a deleted thing shows up nowhere."""
    ends = {
        "out": connections.c.from_id == thing_id,
        "in": connections.c.to_id == thing_id,
        "both": sa.or_(connections.c.from_id == thing_id, connections.c.to_id == thing_id),
    }
    live = things.alias("live")
    other_end_live = sa.exists().where(
        live.c.org_id == org_id, live.c.deleted_at.is_(None),
        live.c.id == sa.case((connections.c.from_id == thing_id, connections.c.to_id), else_=connections.c.from_id),
        *([visible.clause()] if visible is not None else []),
    )
    conditions = [connections.c.org_id == org_id, ends[direction], other_end_live]
    if types:
        conditions.append(connections.c.type.in_(list(types)))
    if as_of is not None:
        conditions.append(_valid_at(as_of))
    if cursor is not None:
        conditions.append(connections.c.id > cursor)
    statement = sa.select(connections).where(*conditions).order_by(connections.c.id).limit(limit + 1)
    return [ConnectionRow(*row) for row in await session.execute(statement)]


async def related_things(
    session: AsyncConnection, org_id: UUID, thing_id: UUID, types: Sequence[str], visible: ScopeSql | None = None
) -> list[tuple[ConnectionRow, ThingRow]]:
    """The thing's current connections of `types`, each with the (live) thing at the other end (within the
    caller's scope, `visible` on the table `things`)."""
    conditions, params = "", {"org": org_id, "thing": thing_id, "types": list(types)}
    if visible is not None:
        conditions = f" AND {visible.text}"
        params.update(visible.params)
    split = len(connections.columns)
    return [(ConnectionRow(*row[:split]), ThingRow(*row[split:]))
            for row in await named(_related_statement(conditions)).fetch(session, params)]


@functools.lru_cache(maxsize=256)
def _related_statement(conditions: str) -> str:
    """The related things under one scope rule (`conditions`), run on the driver (`shared.runtime.sql.named`): a
    thing read with `include` runs it. The things' table keeps its name, `things`, which the scope rule names."""
    return (
        f"SELECT {', '.join(f'c.{name}' for name in connections.c.keys())},"
        f" {', '.join(f'things.{name}' for name in things.c.keys())}"
        " FROM graph.connections c JOIN graph.things things ON things.org_id = :org"
        " AND things.id = CASE WHEN c.from_id = :thing THEN c.to_id ELSE c.from_id END AND things.deleted_at IS NULL"
        " WHERE c.org_id = :org AND (c.from_id = :thing OR c.to_id = :thing) AND c.type = ANY(CAST(:types AS text[]))"
        f" AND (c.valid_to IS NULL OR c.valid_to > now()){conditions}"
        " ORDER BY c.id"
    )


def _step(direction: str, conditions: str) -> str:
    """The things one hop from `w.id`; the live-thing check sits inside, so it is an index probe per edge."""
    def hop(near: str, far: str) -> str:
        return (
            f"SELECT c.{far} AS next_id FROM graph.connections c"
            f" JOIN graph.things live ON live.org_id = c.org_id AND live.id = c.{far} AND live.deleted_at IS NULL"
            f" WHERE c.org_id = :org AND c.{near} = w.id{conditions}"
        )
    return {"out": hop("from_id", "to_id"), "in": hop("to_id", "from_id"),
            "both": f"{hop('from_id', 'to_id')} UNION ALL {hop('to_id', 'from_id')}"}[direction]


@dataclass(frozen=True, slots=True)
class Walk:
    """A traversal's shape: how deep, which way, over which connection types, at which time, how many things."""

    depth: int
    direction: str
    types: Sequence[str]
    as_of: datetime | None
    limit: int


async def neighbors(
    session: AsyncConnection, org_id: UUID, start: UUID, walk: Walk, visible: ScopeSql | None = None
) -> list[tuple[ThingRow, int]]:
    """The start thing (first, at depth 0, deleted or not; absent if there is no such thing) and the things within
    `walk.depth` hops, each at its shortest distance: one statement, so a traversal is one round trip.

    Each walk carries its path and never revisits a thing on it, so a cycle ends the walk
    instead of looping; `depth` bounds the length. Deleted things are not walked through, nor
    things outside the caller's scope (`visible`, on the alias `live`).
    """
    conditions, params = "", {"org": org_id, "start": start, "depth": walk.depth, "limit": walk.limit}
    if walk.types:
        conditions += " AND c.type = ANY(CAST(:types AS text[]))"
        params["types"] = list(walk.types)
    if walk.as_of is not None:
        conditions += " AND c.valid_from <= :as_of AND (c.valid_to IS NULL OR c.valid_to > :as_of)"
        params["as_of"] = walk.as_of
    if visible is not None:
        conditions += f" AND {visible.text}"
        params.update(visible.params)
    statement = _neighbors_statement(walk.direction, conditions)
    return [(ThingRow(*row[:-1]), row[-1]) for row in await named(statement).fetch(session, params)]


_NEIGHBORS_ALONE = Sql("SELECT * FROM graph.neighbors($1, $2, $3, $4, $5, $6, $7)")


async def neighbors_alone(
    db: Database, org_id: UUID, start: UUID, walk: Walk, timeout: float
) -> list[tuple[ThingRow, int]]:
    """`neighbors` for a caller no scope rule restricts, as one lone statement: `graph.neighbors` (migration v0010)
    sets the tenant itself, so the walk needs no transaction and is one round trip. `timeout` in seconds."""
    rows = await db.fetch_alone(_NEIGHBORS_ALONE, org_id, start, walk.depth, walk.limit, walk.direction,
                                list(walk.types) or None, walk.as_of, timeout=timeout)
    return [(ThingRow(*row[:-1]), row[-1]) for row in rows]


@functools.lru_cache(maxsize=256)
def _neighbors_statement(direction: str, conditions: str) -> str:
    """The traversal of one shape (direction, filters, scope rule), built once, run on the driver
    (`shared.runtime.sql.named`):
    a traversal is this one statement."""
    return f"""
        WITH RECURSIVE walk(id, depth, path) AS (
            SELECT CAST(:start AS uuid), 0, ARRAY[CAST(:start AS uuid)]
          UNION ALL
            SELECT step.next_id, w.depth + 1, w.path || step.next_id
            FROM walk w
            CROSS JOIN LATERAL ({_step(direction, conditions)}) step
            WHERE w.depth < :depth AND step.next_id <> ALL(w.path)
        )
        SELECT t.*, reached.depth AS reached_depth
        FROM (SELECT id, min(depth) AS depth FROM walk GROUP BY id) reached
        JOIN graph.things t ON t.org_id = :org AND t.id = reached.id
        ORDER BY reached.depth, t.id
        LIMIT :limit + 1
    """


def _thing_or_none(row: sa.Row[Any] | asyncpg.Record | None) -> ThingRow | None:
    return None if row is None else ThingRow(*row)


def _connection_or_none(row: sa.Row[Any] | asyncpg.Record | None) -> ConnectionRow | None:
    return None if row is None else ConnectionRow(*row)
