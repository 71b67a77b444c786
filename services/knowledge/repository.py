"""The SQL of knowledge items, labels and thingKnowledge links; every statement filters on the org.

Row-Level Security (`app.org_id`, set by the handler's transaction) backs each filter up.
Vectors travel as pgvector's text form (`[0.1,0.2,...]`, which is JSON), cast per row, so a
batch of any size is one statement over arrays (`unnest`).
"""

import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.knowledge.models import (
    ITEM_COLUMNS,
    items,
    label_aliases,
    thing_knowledge,
)

Row = sa.Row[Any]
NOW = sa.func.clock_timestamp()
LIVE = (items.c.deleted_at.is_(None), items.c.archived_at.is_(None))


def vector_text(vector: Sequence[float]) -> str:
    return json.dumps(vector, separators=(",", ":"))


_ITEM_FIELDS = (
    "id", "org_id", "knowledge_type", "name", "text", "text_hash", "embedding", "embedding_model", "embedding_dim",
    "source_thing_id", "source_thing_type", "source_field", "document_id", "chunk_index", "chunk_start", "chunk_end",
    "token_count", "chunk_overlap", "labels", "metadata", "source_hash", "ingested",
)
_ITEM_TYPES = (
    "uuid", "uuid", "text", "text", "text", "text", "text", "text", "int", "uuid", "text", "text", "uuid", "int", "int",
    "int", "int", "int", "text", "text", "text", "boolean",
)
_INSERT_ITEMS = sa.text(f"""
    INSERT INTO knowledge.items ({", ".join(_ITEM_FIELDS)})
    SELECT id, org_id, knowledge_type, name, text, text_hash, embedding::vector, embedding_model, embedding_dim,
           source_thing_id, source_thing_type, source_field, document_id, chunk_index, chunk_start, chunk_end,
           token_count, chunk_overlap, labels::text[], metadata::jsonb, source_hash, coalesce(ingested, false)
    FROM unnest({", ".join(f"CAST(:{f} AS {t}[])" for f, t in zip(_ITEM_FIELDS, _ITEM_TYPES, strict=True))})
        AS t({", ".join(_ITEM_FIELDS)})
    RETURNING {", ".join(c.name for c in ITEM_COLUMNS)}
""").columns(*ITEM_COLUMNS)


async def insert_items(session: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[Row]:
    """Insert items given as dicts of `_ITEM_FIELDS` (labels as a list, metadata as a dict, embedding as floats)."""
    columns: dict[str, list[Any]] = {name: [row.get(name) for row in rows] for name in _ITEM_FIELDS}
    columns["embedding"] = [None if v is None else vector_text(v) for v in columns["embedding"]]
    # arrays of arrays must be rectangular: labels travel as their Postgres array literal text
    columns["labels"] = ["{" + ",".join(json.dumps(label) for label in (v or [])) + "}" for v in columns["labels"]]
    columns["metadata"] = [json.dumps(v or {}) for v in columns["metadata"]]
    return list((await session.execute(_INSERT_ITEMS, columns)).all())


async def get_item(session: AsyncConnection, org_id: UUID, item_id: UUID, *, with_embedding: bool = False) -> Row | None:
    columns = [*ITEM_COLUMNS, items.c.embedding] if with_embedding else ITEM_COLUMNS
    return (await session.execute(sa.select(*columns).where(items.c.org_id == org_id, items.c.id == item_id))).first()


async def items_by_ids(session: AsyncConnection, org_id: UUID, ids: Sequence[UUID]) -> dict[UUID, Row]:
    statement = sa.select(*ITEM_COLUMNS).where(items.c.org_id == org_id, items.c.id.in_(list(ids)))
    return {row.id: row for row in (await session.execute(statement)).all()}


async def query_items(
    session: AsyncConnection, org_id: UUID, *, knowledge_type: str | None, source_thing_id: UUID | None,
    labels: Sequence[str], include_archived: bool, include_deleted: bool, cursor: UUID | None, limit: int,
) -> list[Row]:
    statement = sa.select(*ITEM_COLUMNS).where(items.c.org_id == org_id)
    if knowledge_type:
        statement = statement.where(items.c.knowledge_type == knowledge_type)
    if source_thing_id:
        statement = statement.where(items.c.source_thing_id == source_thing_id)
    if labels:
        statement = statement.where(items.c.labels.contains(list(labels)))
    if not include_archived:
        statement = statement.where(items.c.archived_at.is_(None))
    if not include_deleted:
        statement = statement.where(items.c.deleted_at.is_(None))
    if cursor:
        statement = statement.where(items.c.id > cursor)
    return list((await session.execute(statement.order_by(items.c.id).limit(limit))).all())


async def set_item_state(session: AsyncConnection, org_id: UUID, item_id: UUID, **values: Any) -> Row | None:
    statement = (
        sa.update(items).where(items.c.org_id == org_id, items.c.id == item_id)
        .values(**values, updated_at=NOW).returning(*ITEM_COLUMNS)
    )
    return (await session.execute(statement)).first()


async def set_chunks_deleted(session: AsyncConnection, org_id: UUID, document_id: UUID, deleted: bool) -> None:
    """A document's chunks follow it into (and out of) deletion."""
    await session.execute(sa.update(items).where(items.c.org_id == org_id, items.c.document_id == document_id).values(
        deleted_at=NOW if deleted else None, updated_at=NOW))


async def ingested_documents(session: AsyncConnection, org_id: UUID, thing_id: UUID) -> dict[str, Row]:
    """The live document ingestion made of each text field of a thing (documents added by hand are not
    ingestion's: it never replaces or archives them)."""
    statement = sa.select(*ITEM_COLUMNS).where(
        items.c.org_id == org_id, items.c.source_thing_id == thing_id, items.c.knowledge_type == "document",
        items.c.ingested, *LIVE,
    )
    return {row.source_field: row for row in (await session.execute(statement)).all()}


async def archive_ingested_field(session: AsyncConnection, org_id: UUID, thing_id: UUID, field: str) -> int:
    """Archive what ingestion made of one field of a thing (its document and chunks), nothing added by hand.
    A field is required: every field at once is `archive_thing`, for a thing that is gone."""
    if not field:
        raise ValueError("archive_ingested_field needs a field; archive_thing archives all of a thing's knowledge")
    return await _archive(session, org_id, [
        items.c.source_thing_id == thing_id, items.c.ingested, items.c.source_field == field,
    ])


async def archive_thing(session: AsyncConnection, org_id: UUID, thing_id: UUID) -> int:
    """Archive every live item of a deleted thing: what ingestion made and what was added for it by hand."""
    return await _archive(session, org_id, [items.c.source_thing_id == thing_id])


async def _archive(session: AsyncConnection, org_id: UUID, conditions: list[Any]) -> int:
    """Archive the live items matching `conditions` and drop their chunk_of links."""
    statement = sa.update(items).where(items.c.org_id == org_id, *conditions, *LIVE).values(
        archived_at=NOW, updated_at=NOW).returning(items.c.id)
    ids = list((await session.execute(statement)).scalars())
    if ids:
        await session.execute(sa.delete(thing_knowledge).where(
            thing_knowledge.c.org_id == org_id, thing_knowledge.c.knowledge_id.in_(ids),
            thing_knowledge.c.role == "chunk_of",
        ))
    return len(ids)


async def scrub_ingested_text(session: AsyncConnection, org_id: UUID, thing_id: UUID) -> int:
    """Drop the text of every item ingestion made of a thing, archived ones included: once a thing is
    ingested vector-only, no text of it stays behind in rows that GC has not purged yet."""
    statement = sa.update(items).where(
        items.c.org_id == org_id, items.c.source_thing_id == thing_id, items.c.ingested, items.c.text.is_not(None),
    ).values(text=None, updated_at=NOW)
    return (await session.execute(statement)).rowcount


async def update_source_labels(session: AsyncConnection, org_id: UUID, thing_id: UUID, *, add: Sequence[str] = (),
                               remove: Sequence[str] = ()) -> None:
    """Keep the labels of a thing's chunks equal to the thing's labels, so label filters see them."""
    await session.execute(sa.text("""
        UPDATE knowledge.items SET labels = ARRAY(
            SELECT DISTINCT l FROM unnest(labels || CAST(:add AS text[])) AS l WHERE l <> ALL(CAST(:remove AS text[]))
            ORDER BY l), updated_at = clock_timestamp()
        WHERE org_id = :org AND source_thing_id = :thing AND knowledge_type <> 'label'
    """), {"org": org_id, "thing": thing_id, "add": list(add), "remove": list(remove)})


async def archive_orphans(session: AsyncConnection, org_id: UUID) -> int:
    """Archive live chunks whose document is gone, archived or deleted."""
    return (await session.execute(sa.text("""
        UPDATE knowledge.items c SET archived_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE c.org_id = :org_id AND c.document_id IS NOT NULL AND c.archived_at IS NULL AND c.deleted_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM knowledge.items d WHERE d.org_id = c.org_id AND d.id = c.document_id
                          AND d.archived_at IS NULL AND d.deleted_at IS NULL)
    """), {"org_id": org_id})).rowcount


async def purge_archived(session: AsyncConnection, org_id: UUID, older_than_seconds: float) -> int:
    """Delete for good the items archived longer ago than that (their links go with them)."""
    statement = sa.delete(items).where(
        items.c.org_id == org_id, items.c.archived_at < NOW - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds)
    )
    return (await session.execute(statement)).rowcount


# labels


async def find_label(session: AsyncConnection, org_id: UUID, name: str) -> Row | None:
    """The live label called `name`, or whose alias `name` is."""
    by_name = sa.select(*ITEM_COLUMNS).where(
        items.c.org_id == org_id, items.c.knowledge_type == "label", items.c.name == name, items.c.deleted_at.is_(None)
    )
    row = (await session.execute(by_name)).first()
    if row is not None:
        return row
    by_alias = sa.select(*ITEM_COLUMNS).join(label_aliases, sa.and_(
        label_aliases.c.org_id == items.c.org_id, label_aliases.c.label_id == items.c.id,
    )).where(label_aliases.c.org_id == org_id, label_aliases.c.alias == name, items.c.deleted_at.is_(None))
    return (await session.execute(by_alias)).first()


async def labels_named(session: AsyncConnection, org_id: UUID, names: Sequence[str]) -> dict[str, Row]:
    """Live labels by name or alias, keyed by the name asked for."""
    found = {}
    for name in dict.fromkeys(names):
        row = await find_label(session, org_id, name)
        if row is not None:
            found[name] = row
    return found


async def lock_labels(session: AsyncConnection, org_id: UUID) -> None:
    """Serialise label creation within an org, so a name and its aliases stay unique together."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('knowledge.labels:' || :org))"),
                          {"org": str(org_id)})


async def add_aliases(session: AsyncConnection, org_id: UUID, label_id: UUID, aliases: Sequence[str]) -> None:
    if aliases:
        await session.execute(sa.insert(label_aliases), [
            {"org_id": org_id, "alias": alias, "label_id": label_id} for alias in aliases
        ])


async def remove_aliases(session: AsyncConnection, org_id: UUID, label_id: UUID) -> list[str]:
    """Free a deleted label's aliases, so each name can name another label again; the names removed."""
    statement = sa.delete(label_aliases).where(
        label_aliases.c.org_id == org_id, label_aliases.c.label_id == label_id
    ).returning(label_aliases.c.alias)
    return sorted((await session.execute(statement)).scalars())


async def aliases_of(session: AsyncConnection, org_id: UUID, label_ids: Sequence[UUID]) -> dict[UUID, list[str]]:
    statement = sa.select(label_aliases.c.label_id, label_aliases.c.alias).where(
        label_aliases.c.org_id == org_id, label_aliases.c.label_id.in_(list(label_ids))
    ).order_by(label_aliases.c.alias)
    result: dict[UUID, list[str]] = {}
    for label_id, alias in (await session.execute(statement)).all():
        result.setdefault(label_id, []).append(alias)
    return result


async def list_labels(session: AsyncConnection, org_id: UUID, *, prefix: str | None, include_deprecated: bool,
                      cursor: str | None, limit: int) -> list[Row]:
    statement = sa.select(*ITEM_COLUMNS).where(
        items.c.org_id == org_id, items.c.knowledge_type == "label", items.c.deleted_at.is_(None)
    )
    if prefix:
        statement = statement.where(items.c.name.startswith(prefix, autoescape=True))
    if not include_deprecated:
        statement = statement.where(items.c.deprecated_at.is_(None))
    if cursor:
        statement = statement.where(items.c.name > cursor)
    return list((await session.execute(statement.order_by(items.c.name).limit(limit))).all())


async def label_references(session: AsyncConnection, org_id: UUID, label: Row) -> int:
    """Things linked to the label plus live items carrying its name."""
    links = sa.select(sa.func.count()).select_from(thing_knowledge).where(
        thing_knowledge.c.org_id == org_id, thing_knowledge.c.knowledge_id == label.id
    )
    carriers = sa.select(sa.func.count()).select_from(items).where(
        items.c.org_id == org_id, items.c.labels.contains([label.name]), items.c.deleted_at.is_(None),
        items.c.knowledge_type != "label",
    )
    return int((await session.execute(links)).scalar_one()) + int((await session.execute(carriers)).scalar_one())


# thingKnowledge links


async def insert_links(session: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[Row]:
    """Insert links; one that exists already (same thing, item and role) is kept and returned as it was."""
    if not rows:
        return []
    statement = sa.text("""
        INSERT INTO knowledge.thing_knowledge (id, org_id, thing_id, knowledge_id, role, metadata)
        SELECT id, org_id, thing_id, knowledge_id, role, metadata::jsonb
        FROM unnest(CAST(:id AS uuid[]), CAST(:org_id AS uuid[]), CAST(:thing_id AS uuid[]),
                    CAST(:knowledge_id AS uuid[]), CAST(:role AS text[]), CAST(:metadata AS text[]))
            AS t(id, org_id, thing_id, knowledge_id, role, metadata)
        ON CONFLICT (org_id, thing_id, knowledge_id, role) DO UPDATE SET metadata = thing_knowledge.metadata
        RETURNING *
    """).columns(*thing_knowledge.columns)
    columns = {name: [row[name] for row in rows] for name in ("id", "org_id", "thing_id", "knowledge_id", "role")}
    columns["metadata"] = [json.dumps(row.get("metadata") or {}) for row in rows]
    return list((await session.execute(statement, columns)).all())


async def delete_links(session: AsyncConnection, org_id: UUID, thing_id: UUID, knowledge_ids: Sequence[UUID],
                       role: str) -> int:
    statement = sa.delete(thing_knowledge).where(
        thing_knowledge.c.org_id == org_id, thing_knowledge.c.thing_id == thing_id,
        thing_knowledge.c.knowledge_id.in_(list(knowledge_ids)), thing_knowledge.c.role == role,
    )
    return (await session.execute(statement)).rowcount


async def links_of_thing(session: AsyncConnection, org_id: UUID, thing_id: UUID, *, role: str | None,
                         cursor: UUID | None, limit: int) -> list[tuple[Row, Row]]:
    """A thing's links with their items, oldest link first."""
    link_columns = [c.label(f"link_{c.name}") for c in thing_knowledge.columns]
    statement = (
        sa.select(*link_columns, *ITEM_COLUMNS)
        .join(items, sa.and_(items.c.org_id == thing_knowledge.c.org_id, items.c.id == thing_knowledge.c.knowledge_id))
        .where(thing_knowledge.c.org_id == org_id, thing_knowledge.c.thing_id == thing_id)
    )
    if role:
        statement = statement.where(thing_knowledge.c.role == role)
    if cursor:
        statement = statement.where(thing_knowledge.c.id > cursor)
    rows = (await session.execute(statement.order_by(thing_knowledge.c.id).limit(limit))).all()
    return [(_link_part(row), row) for row in rows]


def _link_part(row: Row) -> Any:
    return SimpleNamespace(**{c.name: getattr(row, f"link_{c.name}") for c in thing_knowledge.columns})


async def things_by_labels(session: AsyncConnection, org_id: UUID, label_ids: Sequence[UUID], *, match_all: bool,
                           cursor: UUID | None, limit: int) -> list[UUID]:
    needed = len(set(label_ids)) if match_all else 1
    statement = (
        sa.select(thing_knowledge.c.thing_id)
        .where(thing_knowledge.c.org_id == org_id, thing_knowledge.c.role == "label",
               thing_knowledge.c.knowledge_id.in_(list(label_ids)))
        .group_by(thing_knowledge.c.thing_id)
        .having(sa.func.count(sa.distinct(thing_knowledge.c.knowledge_id)) >= needed)
        .order_by(thing_knowledge.c.thing_id).limit(limit)
    )
    if cursor:
        statement = statement.where(thing_knowledge.c.thing_id > cursor)
    return list((await session.execute(statement)).scalars())
