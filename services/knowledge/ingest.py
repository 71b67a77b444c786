"""Ingesting one thing: its text fields -> chunks -> embeddings -> items and `chunk_of` links.

Follows the spec's "RAG Ingestion Strategy": the inventory of text fields, ~800-token windows
with ~200 overlap, the model and dimension stored per item, `metadata.hash` of the source to
skip unchanged text (here `source_hash`, which also covers the model, the window and privacy),
old chunks archived on change, `vector_only` for private text.

Ingestion manages only what it made: documents and chunks marked `ingested`, one document per
text field. Items added by hand for the thing (with any field, or none) are never archived or
replaced by it; only the thing's deletion archives them.

Privacy is sticky: a thing is ingested vector-only when its `properties.vectorOnly` is true, when
a request asks for it, or when it was ingested vector-only before (`ingest_state`); only an
explicit request with `store_text` turns that off. Switching to vector-only also drops the text
of the thing's archived chunks.

Embedding happens before the transaction opens. The transaction locks the thing's ingestion state
(one writer per thing) and checks that nobody wrote the thing meanwhile (its live documents are
the ones read before embedding, and no newer version of the thing was ingested); otherwise the
result is dropped and the thing queued again, so a slow run never overwrites newer chunks.
"""

import html
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.knowledge import events, graph, pipeline, repository as repo, repository_jobs as jobs_repo, state
from shared.contracts.graph import Thing
from shared.contracts.knowledge import ThingNotFound
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

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
    note: str | None = None


def job_context(runtime: ServiceRuntime, job: Any) -> WorkContext:
    """A job runs as the service (reading things, nothing else) on behalf of whoever caused it; its
    events are correlated with the job, whose id `knowledge.ingest.status` shows."""
    return runtime.background(job.org_id, on_behalf_of=job.actor_id, correlation_id=job.id)


def privacy_of(job: Any, thing: Thing, remembered: Any) -> bool:
    """Whether to keep vectors only: the thing says so, the request says so, or the thing was last
    ingested so and no explicit request (`store_text`) turned that off."""
    if thing.properties.get("vectorOnly") is True or job.vector_only:
        return True
    if job.store_text:
        return False
    return remembered is not None and remembered.vector_only


def fields_to_read(job: Any, documents: dict[str, Any], mode_changed: bool) -> list[str]:
    """The fields this run looks at: the ones asked for, else the inventory and every other field
    ingestion owns for the thing (asked for by name once, so kept up to date). A change of privacy
    mode covers every field, so no text is left behind in a field the request did not name."""
    if job.fields and not mode_changed:
        return list(job.fields)
    return [*TEXT_FIELDS, *sorted(field for field in documents if field not in TEXT_FIELDS)]


async def purge(ctx: WorkContext, job: Any, reason: str) -> Outcome:
    """A deleted thing: all of its knowledge is archived, what was added for it by hand too."""
    async with ctx.transaction() as tx:
        archived = await repo.archive_thing(tx.session, job.org_id, job.thing_id)
        await events.items_archived(tx, job.thing_id, archived, reason)
    return Outcome("done" if archived else "skipped")


async def ingest_thing(runtime: ServiceRuntime, job: Any) -> Outcome:
    ctx = job_context(runtime, job)
    if job.action == "purge":
        return await purge(ctx, job, "thing deleted")
    try:
        thing = await graph.live_thing(ctx, job.thing_id)
    except ThingNotFound:
        return await purge(ctx, job, "thing gone")
    knowledge, settings = state.of(runtime), runtime.settings
    async with ctx.transaction() as tx:
        documents = await repo.ingested_documents(tx.session, job.org_id, job.thing_id)
        remembered = await jobs_repo.ingest_state(tx.session, job.org_id, job.thing_id)
        thing_labels = await _labels_of(tx.session, job.org_id, job.thing_id)
    vector_only = privacy_of(job, thing, remembered)
    mode_changed = vector_only != (remembered is not None and remembered.vector_only)
    fields = fields_to_read(job, documents, mode_changed)
    texts = extract_texts(thing, fields)
    changed = {
        field: text for field, text in texts.items()
        if job.force or field not in documents
        or documents[field].source_hash != pipeline.fingerprint(knowledge, settings, text, vector_only=vector_only)
    }
    gone = [field for field in documents if field not in texts and field in fields]
    if not changed and not gone:
        async with ctx.transaction() as tx:
            await jobs_repo.save_ingest_state(tx.session, job.org_id, job.thing_id, vector_only=vector_only,
                                              thing_version=thing.version)
        return Outcome("skipped")
    prepared = {
        field: await pipeline.document_rows(
            knowledge, settings, org_id=job.org_id, text=text, vector_only=vector_only,
            source_thing_id=thing.id, source_thing_type=thing.type.value, source_field=field,
            labels=thing_labels, metadata={"thingName": thing.name}, ingested=True,
        )
        for field, text in changed.items()
    }
    if not await _commit(ctx, job, thing, vector_only, prepared, gone, documents):
        knowledge.workers.wake.set()
        return Outcome("skipped", note="superseded: the thing was ingested meanwhile; queued again")
    return Outcome("done", sum(len(rows) - 1 for rows in prepared.values()))


async def _commit(ctx: WorkContext, job: Any, thing: Thing, vector_only: bool,
                  prepared: dict[str, list[dict[str, Any]]], gone: list[str], documents: dict[str, Any]) -> bool:
    """Write the run's result under the thing's lock, or, when another run wrote the thing since this
    one read it, queue the thing again instead (False)."""
    async with ctx.transaction() as tx:
        session = tx.session
        current = await jobs_repo.lock_ingest_state(session, job.org_id, job.thing_id)
        if await _written_meanwhile(session, job, thing, current, documents):
            await jobs_repo.enqueue(session, [_again(job)])
            return False
        await _write(tx, job, prepared, gone, documents)
        if vector_only:
            await events.text_removed(tx, job.thing_id, await repo.scrub_ingested_text(session, job.org_id, job.thing_id))
        await jobs_repo.save_ingest_state(session, job.org_id, job.thing_id, vector_only=vector_only,
                                          thing_version=thing.version)
    return True


async def _written_meanwhile(session: Any, job: Any, thing: Thing, current: Any, documents: dict[str, Any]) -> bool:
    """Whether another run wrote the thing since this one read it: a newer version of the thing was
    ingested, or the live documents are not the ones this run's plan was made from."""
    if current.thing_version is not None and current.thing_version > thing.version:
        return True
    now = await repo.ingested_documents(session, job.org_id, job.thing_id)
    return {row.id for row in now.values()} != {row.id for row in documents.values()}


def _again(job: Any) -> dict[str, Any]:
    """The same request, queued to run from the thing as it is now."""
    return {"org_id": job.org_id, "thing_id": job.thing_id, "action": "ingest", "fields": job.fields,
            "force": job.force, "vector_only": job.vector_only, "store_text": job.store_text,
            "trigger": job.trigger, "actor_id": job.actor_id, "delay_ms": 0}


async def _write(ctx: WorkContext, job: Any, prepared: dict[str, list[dict[str, Any]]], gone: list[str],
                 documents: dict[str, Any]) -> None:
    """Replace each changed field's document and chunks, archive each emptied field's; one event each."""
    session = ctx.session
    for field, rows in prepared.items():
        archived = await repo.archive_ingested_field(session, job.org_id, job.thing_id, field)
        inserted = await repo.insert_items(session, rows)
        await repo.insert_links(session, pipeline.chunk_links(rows))
        await events.items_added(ctx, inserted[1:] or inserted, re_embedded=field in documents, archived=archived)
    for field in gone:
        archived = await repo.archive_ingested_field(session, job.org_id, job.thing_id, field)
        await events.items_archived(ctx, job.thing_id, archived, f"field {field} is empty", field=field)


async def _labels_of(session: Any, org_id: UUID, thing_id: UUID) -> list[str]:
    links = await repo.links_of_thing(session, org_id, thing_id, role="label", cursor=None, limit=1000)
    return sorted(item.name for _, item in links if item.deleted_at is None)
