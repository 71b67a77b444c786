"""Garbage collection of one org's knowledge ("Retention: archive old chunks on major edits; GC
orphaned knowledge items").

- Orphans: live chunks whose document is gone, archived or deleted (a document replaced while a
  chunk was being written elsewhere, rows left by an older version) are archived.
- Archived items older than `knowledge_archive_retention_days` are deleted for good, with their
  links. Deleted (not archived) items stay: a person deleted them and may restore them.
"""

from uuid import UUID

from services.knowledge import repository as repo
from services.knowledge.ingest import background_context
from services.knowledge.schemas import GcReport
from shared.kernel.ontology import EventType
from shared.runtime.service import ServiceRuntime


async def collect(runtime: ServiceRuntime, org_id: UUID, actor_id: UUID | None, older_than_days: float | None) -> GcReport:
    days = runtime.settings.knowledge_archive_retention_days if older_than_days is None else older_than_days
    async with runtime.db.transaction(org_id) as session:
        ctx = background_context(runtime, session, org_id, actor_id, "gc")
        orphans = await repo.archive_orphans(session, org_id)
        purged = await repo.purge_archived(session, org_id, days * 86400)
        if orphans:
            await ctx.emit(EventType.ENTITY_ARCHIVED, target_type="knowledge", metadata={
                "entityType": "knowledge", "action": "archived", "reason": "orphan", "count": orphans})
        if purged:
            await ctx.emit(EventType.ENTITY_DELETED, target_type="knowledge", metadata={
                "entityType": "knowledge", "action": "purged", "count": purged, "olderThanDays": days})
    if ctx.staged_events:
        runtime.relay.wake()
    return GcReport(archived_orphans=orphans, purged_archived=purged)
