"""Ingesting one thing: its text fields -> chunks -> embeddings -> items and `chunk_of` links.

Follows the spec's "RAG Ingestion Strategy": the inventory of text fields, ~800-token windows
with ~200 overlap, the model and dimension stored per item, `metadata.hash` of the source to
skip unchanged text (here `source_hash`, which also covers the model, the window and privacy),
old chunks archived on change, `vector_only` for private text (asked for by the request, or by
the thing itself with `properties.vectorOnly = true`).

Embedding happens before the transaction opens; the transaction locks the thing's documents,
archives what it replaces and writes the new rows, so two runs for one thing leave exactly one
live set of chunks per field.
"""

import html
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.graph.models import Thing
from services.knowledge import events, graph, pipeline, state
from services.knowledge import repository as repo
from services.knowledge.errors import ThingNotFound
from shared.envelope import Envelope
from shared.handlers import RequestContext
from shared.service import ServiceRuntime

TEXT_FIELDS = ("content", "text", "transcript", "recording.transcript", "description", "summary", "caption",
               "title", "html")
"""The spec's inventory: text bodies, transcripts, then metadata (titles, summaries, captions)."""

_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def extract_texts(thing: Thing, fields: list[str] | None) -> dict[str, str]:
    """The non-empty text fields of a thing (HTML stripped to its text), in inventory order."""
    texts = {}
    for name in fields or TEXT_FIELDS:
        value: Any = thing.properties
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            if name == "html" or name.endswith(".html"):
                value = html.unescape(_TAGS.sub(" ", value))
            if value.strip():
                texts[name] = value
    return texts


@dataclass
class Outcome:
    status: str  # done | skipped
    chunks: int = 0


def background_context(runtime: ServiceRuntime, session: Any, org_id: UUID, actor_id: UUID | None,
                       work: str, correlation_id: UUID | None = None) -> RequestContext:
    """A request context for background work (a job, GC): its org and actor, reading things only."""
    auth = graph.reader(org_id, actor_id)
    envelope = Envelope(type=f"knowledge.{work}", org_id=auth.org_id, actor_id=auth.actor_id, role=auth.role,
                        permissions=auth.permissions, scopes=auth.scopes, correlation_id=correlation_id)
    return RequestContext(envelope, session, runtime)


def job_context(runtime: ServiceRuntime, job: Any, session: Any) -> RequestContext:
    return background_context(runtime, session, job.org_id, job.actor_id, "ingest.job", job.id)


async def purge(runtime: ServiceRuntime, job: Any, reason: str) -> Outcome:
    async with runtime.db.transaction(job.org_id) as session:
        ctx = job_context(runtime, job, session)
        archived = await repo.archive_source(session, job.org_id, job.thing_id)
        await events.items_archived(ctx, job.thing_id, archived, reason)
    runtime.relay.wake()
    return Outcome("done" if archived else "skipped")


async def ingest_thing(runtime: ServiceRuntime, job: Any) -> Outcome:
    if job.action == "purge":
        return await purge(runtime, job, "thing deleted")
    try:
        thing = await graph.fetch_thing(runtime.bus, graph.reader(job.org_id, job.actor_id), job.thing_id)
    except ThingNotFound:
        return await purge(runtime, job, "thing gone")
    knowledge, settings = state.of(runtime), runtime.settings
    texts = extract_texts(thing, job.fields)
    vector_only = job.vector_only or thing.properties.get("vectorOnly") is True
    async with runtime.db.transaction(job.org_id) as session:
        documents = await repo.documents_of(session, job.org_id, job.thing_id)
        thing_labels = await _labels_of(session, job.org_id, job.thing_id)
    changed = {
        field: text for field, text in texts.items()
        if job.force or field not in documents
        or documents[field].source_hash != pipeline.fingerprint(knowledge, settings, text, vector_only=vector_only)
    }
    gone = [field for field in documents if field not in texts and (job.fields is None or field in job.fields)]
    if not changed and not gone:
        return Outcome("skipped")
    prepared = {
        field: await pipeline.document_rows(
            knowledge, settings, org_id=job.org_id, text=text, vector_only=vector_only,
            source_thing_id=thing.id, source_thing_type=thing.type.value, source_field=field,
            labels=thing_labels, metadata={"thingName": thing.name},
        )
        for field, text in changed.items()
    }
    async with runtime.db.transaction(job.org_id) as session:
        ctx = job_context(runtime, job, session)
        await repo.documents_of(session, job.org_id, job.thing_id)  # lock: one writer per thing
        for field, rows in prepared.items():
            archived = await repo.archive_source(session, job.org_id, job.thing_id, field)
            inserted = await repo.insert_items(session, rows)
            await repo.insert_links(session, pipeline.chunk_links(rows))
            await events.items_added(ctx, inserted[1:] or inserted, re_embedded=field in documents, archived=archived)
        for field in gone:
            archived = await repo.archive_source(session, job.org_id, job.thing_id, field)
            await events.items_archived(ctx, job.thing_id, archived, f"field {field} is empty")
    runtime.relay.wake()
    return Outcome("done", sum(len(rows) - 1 for rows in prepared.values()))


async def _labels_of(session: Any, org_id: UUID, thing_id: UUID) -> list[str]:
    links = await repo.links_of_thing(session, org_id, thing_id, role="label", cursor=None, limit=1000)
    return sorted(item.name for _, item in links if item.deleted_at is None)
