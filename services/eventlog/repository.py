"""Every SQL statement of the event log.

Reads go through the request's SQLAlchemy session (RLS-scoped to `app.org_id`)
and always filter on `org_id` as well. The ingest writes over a raw asyncpg
connection: one multi-row insert per org per batch, positions assigned under
`POSITION_LOCK` so they become visible in order.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.eventlog.models import IncomingEvent, dead_letters, events
from shared.contracts.eventlog import DailyCount, DeadLetter, EventFilter, EventRecord, InvalidEvent, ProtocolRevenue
from shared.kernel.ontology import UnknownOntologyType, canonical_event

POSITION_LOCK = 0x0E7E_0106  # pg_advisory_xact_lock key: one position writer at a time

_LOCK_AND_TENANT = "SELECT pg_advisory_xact_lock($1), set_config('app.org_id', $2, true)"
_SET_TENANT = "SELECT set_config('app.org_id', $1, true)"
_INSERT_EVENTS = """
INSERT INTO eventlog.events (id, org_id, type, actor_id, target_id, target_type, protocol, transport_protocol,
    occurred_at, metadata, correlation_id, causation_id, trace_id, stream_seq)
SELECT r.id, r.org_id, r.type, r.actor_id, r.target_id, r.target_type, r.protocol, r.transport_protocol,
    r.occurred_at, coalesce(r.raw::jsonb #> '{payload,metadata}', '{}'::jsonb) || r.patch::jsonb,
    r.correlation_id, r.causation_id, r.trace_id, r.stream_seq
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::text[],
    $9::timestamptz[], $10::text[], $11::text[], $12::uuid[], $13::uuid[], $14::text[], $15::bigint[])
    WITH ORDINALITY AS r(id, org_id, type, actor_id, target_id, target_type, protocol, transport_protocol,
        occurred_at, raw, patch, correlation_id, causation_id, trace_id, stream_seq, n)
ORDER BY r.n
ON CONFLICT DO NOTHING
RETURNING position
"""
_INSERT_DEAD_LETTERS = (
    "SELECT eventlog.record_dead_letters($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[],"
    " $7::text[], $8::text[], $9::int[])"
)


async def lock_positions(conn: asyncpg.Connection, org_id: UUID | None = None) -> None:
    """Take the position lock for this transaction (and set the tenant, when given)."""
    await conn.execute(_LOCK_AND_TENANT, POSITION_LOCK, str(org_id) if org_id else "")


async def insert_events(conn: asyncpg.Connection, org_id: UUID, incoming: Sequence[IncomingEvent]) -> list[int]:
    """Insert one org's events; returns the positions of the rows that were new."""
    await conn.execute(_SET_TENANT, str(org_id))
    columns = [[getattr(e, name) for e in incoming] for name in _INGEST_FIELDS]
    return [row[0] for row in await conn.fetch(_INSERT_EVENTS, *columns)]


_INGEST_FIELDS = (
    "id", "org_id", "type", "actor_id", "target_id", "target_type", "protocol", "transport_protocol",
    "occurred_at", "raw", "patch", "correlation_id", "causation_id", "trace_id", "stream_seq",
)


async def insert_dead_letters(conn: asyncpg.Connection, letters: Sequence[dict[str, Any]]) -> None:
    fields = ("dedup_key", "org_id", "event_id", "subject", "stream_seq", "reason_code", "reason", "raw", "deliveries")
    await conn.execute(_INSERT_DEAD_LETTERS, *[[letter[f] for letter in letters] for f in fields])


def _type_condition(names: list[str]) -> sa.ColumnElement[bool]:
    """`payment_processed` matches payment_event with metadata.status = processed."""
    alternatives = []
    for name in names:
        try:
            canonical = canonical_event(name)
        except UnknownOntologyType:
            raise InvalidEvent("unknown_type", f"unknown event type {name!r}", {"type": name}) from None
        condition = events.c.type == canonical.type.value
        if canonical.metadata:
            condition = sa.and_(condition, events.c.metadata.contains(dict(canonical.metadata)))
        alternatives.append(condition)
    return sa.or_(*alternatives)


def _where(org_id: UUID, f: EventFilter) -> list[sa.ColumnElement[bool]]:
    """The org's events matching the filter (RLS backs the org condition up)."""
    c = events.c
    conditions = [c.org_id == org_id]
    if f.types:
        conditions.append(_type_condition(f.types))
    if f.actor_id:
        conditions.append(c.actor_id == f.actor_id)
    if f.target_id:
        conditions.append(c.target_id == f.target_id)
    if f.thing_id:
        conditions.append(sa.or_(c.actor_id == f.thing_id, c.target_id == f.thing_id))
    if f.protocols:
        conditions.append(c.protocol == sa.any_(sa.cast(list(f.protocols), ARRAY(sa.Text))))
    if f.since:
        conditions.append(c.occurred_at >= f.since)
    if f.until:
        conditions.append(c.occurred_at < f.until)
    if f.metadata:
        conditions.append(c.metadata.contains(f.metadata))
    return conditions


_RECORD_COLUMNS = [events.c[name] for name in EventRecord.model_fields]
_FIRST_TWO = sa.text("1, 2")
"""Group and order by the first two selected columns: a repeated expression would bind its constants twice,
and Postgres does not take `metadata -> $1` and `metadata -> $3` for the same grouping."""


async def find_events(
    session: AsyncConnection,
    org_id: UUID,
    f: EventFilter,
    *,
    after: int | None = None,
    before: int | None = None,
    descending: bool = False,
    limit: int,
) -> list[EventRecord]:
    """An org's events matching `f`, ordered by position, from a cursor."""
    conditions = _where(org_id, f)
    if after is not None:
        conditions.append(events.c.position > after)
    if before is not None:
        conditions.append(events.c.position < before)
    order = events.c.position.desc() if descending else events.c.position.asc()
    statement = sa.select(*_RECORD_COLUMNS).where(*conditions).order_by(order).limit(limit)
    rows = (await session.execute(statement)).mappings().all()
    return [EventRecord.model_validate(dict(row)) for row in rows]


async def daily_counts(
    session: AsyncConnection, org_id: UUID, since: datetime, until: datetime, types: list[str]
) -> list[DailyCount]:
    day = sa.cast(sa.func.timezone("UTC", events.c.occurred_at), sa.Date).label("day")
    statement = (
        sa.select(day, events.c.type, sa.func.count().label("count"))
        .where(*_where(org_id, EventFilter(types=types, since=since, until=until)))
        .group_by(_FIRST_TWO)
        .order_by(_FIRST_TWO)
    )
    return [DailyCount.model_validate(dict(r)) for r in (await session.execute(statement)).mappings()]


async def revenue_by_protocol(
    session: AsyncConnection, org_id: UUID, since: datetime, until: datetime, status: str | None, currency: str | None
) -> list[ProtocolRevenue]:
    """The spec's cross-protocol view: payment totals per metadata.protocol (`traditional` when absent).

    Revenue is money in: an org's own payments out (`metadata.direction = "outgoing"`, an agent paying for
    another's resource) are spending, not revenue.
    """
    meta = events.c.metadata
    conditions = [
        events.c.org_id == org_id, events.c.type == "payment_event", events.c.occurred_at >= since,
        events.c.occurred_at < until, sa.func.coalesce(meta["direction"].astext, "") != "outgoing",
    ]
    if status:
        conditions.append(meta["status"].astext == status)
    if currency:
        conditions.append(meta["currency"].astext == currency)
    protocol = sa.func.coalesce(meta["protocol"].astext, "traditional").label("protocol")
    in_currency = meta["currency"].astext.label("currency")
    total = sa.func.coalesce(sa.func.sum(sa.cast(meta["amount"].astext, sa.Numeric)), 0).label("total")
    statement = (
        sa.select(protocol, in_currency, total, sa.func.count().label("count"))
        .where(*conditions)
        .group_by(_FIRST_TWO)
        .order_by(_FIRST_TWO)
    )
    return [ProtocolRevenue.model_validate(dict(r)) for r in (await session.execute(statement)).mappings()]


async def find_dead_letters(session: AsyncConnection, org_id: UUID, after_id: int, limit: int) -> list[DeadLetter]:
    statement = (
        sa.select(*[dead_letters.c[name] for name in DeadLetter.model_fields])
        .where(dead_letters.c.org_id == org_id, dead_letters.c.id > after_id)
        .order_by(dead_letters.c.id)
        .limit(limit)
    )
    return [DeadLetter.model_validate(dict(r)) for r in (await session.execute(statement)).mappings()]


async def dead_letter_counts(session: AsyncConnection, org_id: UUID) -> dict[str, int]:
    code = dead_letters.c.reason_code
    statement = (
        sa.select(code, sa.func.count()).where(dead_letters.c.org_id == org_id).group_by(code).order_by(code)
    )
    return {reason: n for reason, n in (await session.execute(statement)).all()}


async def count_events(session: AsyncConnection, org_id: UUID) -> int:
    statement = sa.select(sa.func.count()).select_from(events).where(events.c.org_id == org_id)
    return (await session.execute(statement)).scalar_one()


ARCHIVE_LINE = (
    "json_build_object('position', position, 'id', id, 'org_id', org_id, 'type', type, 'actor_id', actor_id,"
    " 'target_id', target_id, 'target_type', target_type, 'protocol', protocol,"
    " 'transport_protocol', transport_protocol, 'occurred_at', occurred_at, 'recorded_at', recorded_at,"
    " 'metadata', metadata, 'correlation_id', correlation_id, 'causation_id', causation_id,"
    " 'trace_id', trace_id, 'stream_seq', stream_seq)::text"
)
_CLAIM_ARCHIVE = f"""
SELECT position, occurred_at, {ARCHIVE_LINE} AS line FROM eventlog.events
WHERE occurred_at < $1 AND ($2::uuid IS NULL OR org_id = $2)
ORDER BY position LIMIT $3 FOR UPDATE
"""
_COUNT_ARCHIVABLE = "SELECT count(*) FROM eventlog.events WHERE occurred_at < $1 AND ($2::uuid IS NULL OR org_id = $2)"
_DELETE_ARCHIVED = "DELETE FROM eventlog.events WHERE position = ANY($1::bigint[])"
_IMPORT_LINES = """
INSERT INTO eventlog.events (position, id, org_id, type, actor_id, target_id, target_type, protocol,
    transport_protocol, occurred_at, recorded_at, metadata, correlation_id, causation_id, trace_id, stream_seq)
SELECT (j->>'position')::bigint, (j->>'id')::uuid, (j->>'org_id')::uuid, j->>'type', (j->>'actor_id')::uuid,
    (j->>'target_id')::uuid, j->>'target_type', j->>'protocol', j->>'transport_protocol',
    (j->>'occurred_at')::timestamptz, (j->>'recorded_at')::timestamptz, j->'metadata', (j->>'correlation_id')::uuid,
    (j->>'causation_id')::uuid, j->>'trace_id', (j->>'stream_seq')::bigint
FROM unnest($1::text[]) AS line, LATERAL (SELECT line::jsonb AS j) parsed
ORDER BY 1
ON CONFLICT DO NOTHING
"""


async def count_archivable(conn: asyncpg.Connection, cutoff: datetime, org_id: UUID | None) -> int:
    return await conn.fetchval(_COUNT_ARCHIVABLE, cutoff, org_id)


async def claim_archivable(conn: asyncpg.Connection, cutoff: datetime, org_id: UUID | None, limit: int) -> list:
    """The oldest rows past the cutoff, locked, each already rendered as its archive line."""
    return await conn.fetch(_CLAIM_ARCHIVE, cutoff, org_id, limit)


async def delete_archived(conn: asyncpg.Connection, positions: list[int]) -> int:
    """Only the retention job may: it declares itself to the append-only trigger, for this transaction."""
    await conn.execute("SET LOCAL eventlog.retention = 'on'")
    result = await conn.execute(_DELETE_ARCHIVED, positions)
    return int(result.split()[-1])


async def import_lines(conn: asyncpg.Connection, lines: list[str]) -> int:
    await lock_positions(conn)
    result = await conn.execute(_IMPORT_LINES, lines)
    return int(result.split()[-1])
