"""The knowledge service's domain events, staged in the request's transaction (outbox).

The ontology has no knowledge events of its own, so knowledge uses the entity events with
`metadata.entityType = "knowledge"` (or `"thing_knowledge"` for links) and an `action`:
`added`, `re_embedded`, `archived`, `text_removed`, `deleted`, `restored`, `label_created`,
`label_updated`, `labeled`, `unlabeled`, `linked`, `unlinked`. Events never carry an item's text (a
`vector_only` item has none to carry anyway): ids, types, counts, model and source only.
"""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from shared.kernel.events import EventPayload
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext

_TARGET = "knowledge"


def _summary(rows: Sequence[Any]) -> dict[str, Any]:
    first = rows[0]
    summary: dict[str, Any] = {
        "entityType": _TARGET, "count": len(rows),
        "knowledgeTypes": sorted({row.knowledge_type for row in rows}),
        "itemIds": [str(row.id) for row in rows[:100]],
    }
    models = sorted({row.embedding_model for row in rows if row.embedding_model})
    if models:
        summary["embeddingModels"] = models
    if first.source_thing_id is not None:
        summary["sourceThingId"] = str(first.source_thing_id)
        summary["sourceField"] = first.source_field
    return summary


async def items_added(ctx: WorkContext, rows: Sequence[Any], *, re_embedded: bool = False, archived: int = 0) -> None:
    """One event per add call or ingested field, however many chunks it made."""
    if not rows:
        return
    event = EventType.ENTITY_UPDATED if re_embedded else EventType.ENTITY_CREATED
    metadata = {**_summary(rows), "action": "re_embedded" if re_embedded else "added"}
    if archived:
        metadata["archivedCount"] = archived
    target = rows[0].document_id or rows[0].id
    await ctx.emit_many([(event, EventPayload(target_id=target, target_type=_TARGET, metadata=metadata))])


async def items_archived(ctx: WorkContext, thing_id: UUID, count: int, reason: str, *,
                         field: str | None = None) -> None:
    """One event per archiving (a deleted thing, an emptied field); the target is the source thing."""
    if count:
        metadata = {"entityType": _TARGET, "action": "archived", "sourceThingId": str(thing_id), "count": count,
                    "reason": reason}
        if field is not None:
            metadata["sourceField"] = field
        await ctx.emit(EventType.ENTITY_ARCHIVED, target_id=thing_id, target_type=_TARGET, metadata=metadata)


async def text_removed(ctx: WorkContext, thing_id: UUID, count: int) -> None:
    """The text of a thing's ingested items was dropped because the thing is now vector-only."""
    if count:
        await ctx.emit(EventType.ENTITY_UPDATED, target_id=thing_id, target_type=_TARGET, metadata={
            "entityType": _TARGET, "action": "text_removed", "sourceThingId": str(thing_id), "count": count,
            "reason": "vector_only",
        })


async def items_deleted(ctx: WorkContext, rows: Sequence[Any], *, extra: dict[str, Any] | None = None) -> None:
    for row in rows:
        await ctx.emit(EventType.ENTITY_DELETED, target_id=row.id, target_type=_TARGET,
                       metadata={**_summary([row]), "action": "deleted", **(extra or {})})


async def item_restored(ctx: WorkContext, row: Any) -> None:
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=_TARGET,
                   metadata={**_summary([row]), "action": "restored"})


async def labels_created(ctx: WorkContext, rows: Sequence[Any]) -> None:
    await ctx.emit_many([
        (EventType.ENTITY_CREATED, EventPayload(target_id=row.id, target_type=_TARGET, metadata={
            "entityType": _TARGET, "knowledgeType": "label", "action": "label_created", "name": row.name,
        }))
        for row in rows
    ])


async def label_changed(ctx: WorkContext, row: Any, changes: dict[str, Any]) -> None:
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=_TARGET, metadata={
        "entityType": _TARGET, "knowledgeType": "label", "action": "label_updated", "name": row.name, "changes": changes,
    })


async def thing_links_changed(ctx: WorkContext, thing_id: UUID, action: str, knowledge_ids: Sequence[UUID],
                              role: str) -> None:
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=thing_id, target_type="thing_knowledge", metadata={
        "entityType": "thing_knowledge", "action": action, "role": role,
        "knowledgeIds": [str(i) for i in knowledge_ids[:100]], "count": len(knowledge_ids),
    })
