"""Garbage collection of one org's knowledge ("Retention: archive old chunks on major edits; GC
orphaned knowledge items").

- Orphans: live chunks whose document is gone, archived or deleted (a document replaced while a
  chunk was being written elsewhere, rows left by an older version) are archived.
- Archived items older than `knowledge_archive_retention_days` are deleted for good, with their
  links. Deleted (not archived) items stay: a person deleted them and may restore them.
"""

from services.knowledge import repository as repo
from shared.contracts.knowledge import GcReport
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext


async def collect(ctx: WorkContext, older_than_days: float | None) -> GcReport:
    """GC of the context's org: a caller's (`knowledge.gc`) or the service's own (the hourly run)."""
    settings = ctx.runtime.settings
    days = settings.knowledge_archive_retention_days if older_than_days is None else older_than_days
    async with ctx.transaction() as tx:
        org_id = tx.auth.org_id
        orphans = await repo.archive_orphans(tx.session, org_id)
        purged = await repo.purge_archived(tx.session, org_id, days * 86400)
        if orphans:
            await tx.emit(EventType.ENTITY_ARCHIVED, target_type="knowledge", metadata={
                "entityType": "knowledge", "action": "archived", "reason": "orphan", "count": orphans})
        if purged:
            await tx.emit(EventType.ENTITY_DELETED, target_type="knowledge", metadata={
                "entityType": "knowledge", "action": "purged", "count": purged, "olderThanDays": days})
    return GcReport(archived_orphans=orphans, purged_archived=purged)
