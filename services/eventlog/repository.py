"""Every SQL statement of the event log.

Reads go through the request's SQLAlchemy session (RLS-scoped to `app.org_id`)
and always filter on `org_id` as well. The ingest writes over a raw asyncpg
connection: one multi-row insert per org per batch, positions assigned under
`POSITION_LOCK` so they become visible in order.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.eventlog.errors import InvalidEvent
from services.eventlog.schemas import (
    DailyCount,
    DeadLetter,
    EventFilter,
    EventRecord,
    ProtocolRevenue,
)
from services.eventlog.service import IncomingEvent
from shared.kernel.ontology import UnknownOntologyType, canonical_event

POSITION_LOCK = 0x0E7E_0106  # pg_advisory_xact_lock key: one position writer at a time

_COLUMNS = (
    "position, id, org_id, type, actor_id, target_id, target_type, protocol, transport_protocol,"
    " occurred_at, recorded_at, metadata, correlation_id, causation_id, trace_id"
)

# --- ingest (asyncpg) -------------------------------------------------------

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


async def insert_events(conn: asyncpg.Connection, org_id: UUID, events: Sequence[IncomingEvent]) -> list[int]:
    """Insert one org's events; returns the positions of the rows that were new."""
    await conn.execute(_SET_TENANT, str(org_id))
    columns = [[getattr(e, name) for e in events] for name in _INGEST_FIELDS]
    return [row[0] for row in await conn.fetch(_INSERT_EVENTS, *columns)]


_INGEST_FIELDS = (
    "id", "org_id", "type", "actor_id", "target_id", "target_type", "protocol", "transport_protocol",
    "occurred_at", "raw", "patch", "correlation_id", "causation_id", "trace_id", "stream_seq",
)


async def insert_dead_letters(conn: asyncpg.Connection, letters: Sequence[dict[str, Any]]) -> None:
    fields = ("dedup_key", "org_id", "event_id", "subject", "stream_seq", "reason_code", "reason", "raw", "deliveries")
    await conn.execute(_INSERT_DEAD_LETTERS, *[[letter[f] for letter in letters] for f in fields])


# --- reads (SQLAlchemy session, RLS-scoped) ---------------------------------


def _type_condition(names: list[str], params: dict[str, Any]) -> str:
    """`payment_processed` matches payment_event with metadata.status = processed."""
    alternatives = []
    for i, name in enumerate(names):
        try:
            canonical = canonical_event(name)
        except UnknownOntologyType:
            raise InvalidEvent("unknown_type", f"unknown event type {name!r}", {"type": name}) from None
        params[f"type_{i}"] = canonical.type.value
        if canonical.metadata:
            params[f"variant_{i}"] = json.dumps(dict(canonical.metadata))
            alternatives.append(f"(type = :type_{i} AND metadata @> CAST(:variant_{i} AS jsonb))")
        else:
            alternatives.append(f"type = :type_{i}")
    return "(" + " OR ".join(alternatives) + ")"


def _where(org_id: UUID, f: EventFilter, params: dict[str, Any]) -> list[str]:
    params["org_id"] = org_id
    conditions = ["org_id = :org_id"]
    if f.types:
        conditions.append(_type_condition(f.types, params))
    if f.actor_id:
        conditions.append("actor_id = :actor_id")
        params["actor_id"] = f.actor_id
    if f.target_id:
        conditions.append("target_id = :target_id")
        params["target_id"] = f.target_id
    if f.thing_id:
        conditions.append("(actor_id = :thing_id OR target_id = :thing_id)")
        params["thing_id"] = f.thing_id
    if f.protocols:
        conditions.append("protocol = ANY(CAST(:protocols AS text[]))")
        params["protocols"] = list(f.protocols)
    if f.since:
        conditions.append("occurred_at >= :since")
        params["since"] = f.since
    if f.until:
        conditions.append("occurred_at < :until")
        params["until"] = f.until
    if f.metadata:
        conditions.append("metadata @> CAST(:metadata AS jsonb)")
        params["metadata"] = json.dumps(f.metadata)
    return conditions


async def find_events(
    session: AsyncSession,
    org_id: UUID,
    f: EventFilter,
    *,
    after: int | None = None,
    before: int | None = None,
    descending: bool = False,
    limit: int,
) -> list[EventRecord]:
    """An org's events matching `f`, ordered by position, from a cursor."""
    params: dict[str, Any] = {"limit": limit}
    conditions = _where(org_id, f, params)
    if after is not None:
        conditions.append("position > :after")
        params["after"] = after
    if before is not None:
        conditions.append("position < :before")
        params["before"] = before
    order = "DESC" if descending else "ASC"
    statement = text(
        f"SELECT {_COLUMNS} FROM eventlog.events WHERE {' AND '.join(conditions)} ORDER BY position {order} LIMIT :limit"
    )
    rows = (await session.execute(statement, params)).mappings().all()
    return [EventRecord.model_validate(dict(row)) for row in rows]


async def daily_counts(
    session: AsyncSession, org_id: UUID, since: datetime, until: datetime, types: list[str]
) -> list[DailyCount]:
    params: dict[str, Any] = {}
    conditions = _where(org_id, EventFilter(types=types, since=since, until=until), params)
    statement = text(
        "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, type, count(*) AS count FROM eventlog.events"
        f" WHERE {' AND '.join(conditions)} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return [DailyCount.model_validate(dict(r)) for r in (await session.execute(statement, params)).mappings()]


async def revenue_by_protocol(
    session: AsyncSession, org_id: UUID, since: datetime, until: datetime, status: str | None, currency: str | None
) -> list[ProtocolRevenue]:
    """The spec's cross-protocol view: payment totals per metadata.protocol (`traditional` when absent)."""
    params: dict[str, Any] = {"org_id": org_id, "since": since, "until": until}
    conditions = ["org_id = :org_id", "type = 'payment_event'", "occurred_at >= :since", "occurred_at < :until"]
    if status:
        conditions.append("metadata->>'status' = :status")
        params["status"] = status
    if currency:
        conditions.append("metadata->>'currency' = :currency")
        params["currency"] = currency
    statement = text(
        "SELECT coalesce(metadata->>'protocol', 'traditional') AS protocol, metadata->>'currency' AS currency,"
        " coalesce(sum((metadata->>'amount')::numeric), 0) AS total, count(*) AS count"
        f" FROM eventlog.events WHERE {' AND '.join(conditions)} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return [ProtocolRevenue.model_validate(dict(r)) for r in (await session.execute(statement, params)).mappings()]


async def dead_letters(session: AsyncSession, org_id: UUID, after_id: int, limit: int) -> list[DeadLetter]:
    statement = text(
        "SELECT id, event_id, subject, stream_seq, reason_code, reason, raw, recorded_at FROM eventlog.dead_letters"
        " WHERE org_id = :org_id AND id > :after_id ORDER BY id LIMIT :limit"
    )
    rows = await session.execute(statement, {"org_id": org_id, "after_id": after_id, "limit": limit})
    return [DeadLetter.model_validate(dict(r)) for r in rows.mappings()]


async def dead_letter_counts(session: AsyncSession, org_id: UUID) -> dict[str, int]:
    statement = text(
        "SELECT reason_code, count(*) FROM eventlog.dead_letters WHERE org_id = :org_id GROUP BY 1 ORDER BY 1"
    )
    return {code: n for code, n in (await session.execute(statement, {"org_id": org_id})).all()}


async def count_events(session: AsyncSession, org_id: UUID) -> int:
    statement = text("SELECT count(*) FROM eventlog.events WHERE org_id = :org_id")
    return (await session.execute(statement, {"org_id": org_id})).scalar_one()


# --- retention (asyncpg, as the tables' owner) ------------------------------

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
