"""Labels: the spec's taxonomy ("Knowledge Governance") as knowledge items of type `label`.

- A name is normalised (lower case, spaces to `-`) and checked for its shape only. Labels are
  free-form and user-extensible (the spec's policy); the curated prefixes (`skill:`, `topic:`, ...)
  are recommended, not required, so `colour:blue` is as valid as `topic:ml` or `beginner-friendly`.
  One prefix at most, made of letters, digits, `_` and `-`.
- No duplicates within the org: a name or alias resolves to one label (unique index on names,
  primary key on aliases, and creation serialised per org so a name never shadows an alias).
- A label still applied to things or items is deprecated instead of deleted; a deprecated label
  keeps its references but cannot be applied again. Deleting a label frees its aliases.
- Applying labels to a thing links the thing to each label (thingKnowledge role `label`) and
  copies the names onto the thing's chunks, so searches filter on them without a join.
"""

import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from services.knowledge import events, graph, repository as repo
from shared.contracts.knowledge import (
    InvalidLabel,
    KnowledgeNotFound,
    Label,
    LabelConflict,
    LabelDeprecated,
    LabelPage,
    LabelRemoval,
    ThingIds,
    ThingLabels,
)
from shared.kernel.ids import uuid7
from shared.kernel.ontology import KnowledgeType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

CURATED_PREFIXES = frozenset({
    "skill", "industry", "topic", "format", "goal", "audience", "technology", "status", "capability",
    "protocol", "payment_method", "network",
})
"""The spec's recommended prefixes ("Knowledge Governance"); any other well-formed prefix is accepted too."""
_PREFIX = re.compile(r"^[a-z][a-z0-9_\-]*$")
_VALUE = re.compile(r"^[a-z0-9][a-z0-9_\-./+#&]*$")


def normalize(name: str) -> str:
    """The canonical form of a label name, or `InvalidLabel` saying what is wrong with it."""
    canonical = re.sub(r"\s+", "-", name.strip().lower())
    prefix, colon, value = canonical.rpartition(":") if ":" in canonical else ("", "", canonical)
    if colon and not _PREFIX.match(prefix):
        raise InvalidLabel(
            f"label {name!r} has the prefix {prefix!r}: a prefix is one word of letters, digits, _ and -, "
            "starting with a letter (curated ones are recommended: "
            f"{', '.join(sorted(CURATED_PREFIXES))})",
            {"name": name, "prefix": prefix},
        )
    if not value or not _VALUE.match(value) or len(canonical) > 120:
        raise InvalidLabel(
            f"label {name!r} must be letters, digits and - _ . / + # & after its prefix, at most 120 characters",
            {"name": name},
        )
    return canonical


def normalize_all(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(normalize(name) for name in names))


async def to_labels(ctx: WorkContext, rows: Sequence[Any]) -> list[Label]:
    aliases = await repo.aliases_of(ctx.session, ctx.auth.org_id, [row.id for row in rows])
    return [
        Label(id=row.id, name=row.name, aliases=aliases.get(row.id, []), metadata=row.metadata or {},
              deprecated=row.deprecated_at is not None, created_at=row.created_at)
        for row in rows
    ]


async def ensure_rows(ctx: WorkContext, names: Sequence[str], *, for_use: bool) -> list[Any]:
    """The label rows for `names` (by name or alias), created where missing, in the order given."""
    org_id = ctx.auth.org_id
    wanted = normalize_all(names)
    found = await repo.labels_named(ctx.session, org_id, wanted)
    missing = [name for name in wanted if name not in found]
    if missing:
        require(ctx.auth, "knowledge", "create")
        await repo.lock_labels(ctx.session, org_id)
        found |= await repo.labels_named(ctx.session, org_id, missing)  # created meanwhile
        new = [{"id": uuid7(), "org_id": org_id, "knowledge_type": KnowledgeType.LABEL.value, "name": name,
                "labels": [name]} for name in missing if name not in found]
        if new:
            created = await repo.insert_items(ctx.session, new)
            found |= {row.name: row for row in created}
            await events.labels_created(ctx, created)
    rows = [found[name] for name in wanted]
    if for_use:
        deprecated = [row.name for row in rows if row.deprecated_at is not None]
        if deprecated:
            raise LabelDeprecated(f"label {deprecated[0]!r} is deprecated", {"labels": deprecated})
    return rows


async def ensure(ctx: WorkContext, name: str, aliases: Sequence[str], metadata: dict[str, Any]) -> Label:
    """Get-or-create by name (or alias), adding any aliases not yet known."""
    require(ctx.auth, "knowledge", "read")
    (row,) = await ensure_rows(ctx, [name], for_use=False)
    if metadata and not row.metadata:
        row = await repo.set_item_state(ctx.session, ctx.auth.org_id, row.id, metadata=metadata)
    for alias in aliases:
        row = await _add_alias(ctx, row, alias)
    return (await to_labels(ctx, [row]))[0]


async def _add_alias(ctx: WorkContext, row: Any, alias: str) -> Any:
    canonical = normalize(alias)
    org_id = ctx.auth.org_id
    await repo.lock_labels(ctx.session, org_id)
    holder = await repo.find_label(ctx.session, org_id, canonical)
    if holder is not None:
        if holder.id == row.id:
            return row
        raise LabelConflict(f"{canonical!r} already names label {holder.name!r}", {"alias": canonical, "label": holder.name})
    require(ctx.auth, "knowledge", "update")
    await repo.add_aliases(ctx.session, org_id, row.id, [canonical])
    await events.label_changed(ctx, row, {"aliasAdded": canonical})
    return row


async def get(ctx: WorkContext, name: str) -> Label:
    require(ctx.auth, "knowledge", "read")
    return (await to_labels(ctx, [await _existing(ctx, name)]))[0]


async def _existing(ctx: WorkContext, name: str) -> Any:
    canonical = normalize(name)
    row = await repo.find_label(ctx.session, ctx.auth.org_id, canonical)
    if row is None:
        raise KnowledgeNotFound(f"no label {canonical!r} in this organization", {"name": canonical})
    return row


async def alias(ctx: WorkContext, name: str, alias_name: str) -> Label:
    row = await _add_alias(ctx, await _existing(ctx, name), alias_name)
    return (await to_labels(ctx, [row]))[0]


async def list_labels(ctx: WorkContext, prefix: str | None, include_deprecated: bool, cursor: str | None,
                      limit: int) -> LabelPage:
    require(ctx.auth, "knowledge", "list")
    rows = await repo.list_labels(ctx.session, ctx.auth.org_id, prefix=prefix and prefix.lower(),
                                  include_deprecated=include_deprecated, cursor=cursor, limit=limit)
    return LabelPage(labels=await to_labels(ctx, rows), next_cursor=rows[-1].name if len(rows) == limit else None)


async def deprecate(ctx: WorkContext, name: str) -> Label:
    require(ctx.auth, "knowledge", "update")
    row = await _existing(ctx, name)
    if row.deprecated_at is None:
        row = await repo.set_item_state(ctx.session, ctx.auth.org_id, row.id, deprecated_at=repo.NOW)
        await events.label_changed(ctx, row, {"deprecated": True})
    return (await to_labels(ctx, [row]))[0]


async def delete(ctx: WorkContext, name: str) -> LabelRemoval:
    """Delete a label nobody uses; deprecate one that is still referenced (the spec's hygiene rule)."""
    require(ctx.auth, "knowledge", "delete")
    row = await _existing(ctx, name)
    references = await repo.label_references(ctx.session, ctx.auth.org_id, row)
    if references:
        return LabelRemoval(label=await deprecate(ctx, name), outcome="deprecated", references=references)
    row = await repo.set_item_state(ctx.session, ctx.auth.org_id, row.id, deleted_at=repo.NOW)
    freed = await repo.remove_aliases(ctx.session, ctx.auth.org_id, row.id)
    await events.items_deleted(ctx, [row], extra={"aliasesRemoved": freed} if freed else None)
    return LabelRemoval(label=(await to_labels(ctx, [row]))[0], outcome="deleted", references=0)


async def label_thing(ctx: WorkContext, thing_id: UUID, names: Sequence[str], metadata: dict[str, Any]) -> ThingLabels:
    """Label a live thing; the graph is asked before the transaction opens."""
    require(ctx.auth, "knowledge", "create")
    await graph.live_thing(ctx, thing_id)
    async with ctx.transaction() as tx:
        rows = await ensure_rows(tx, names, for_use=True)
        org_id = tx.auth.org_id
        await repo.insert_links(tx.session, [
            {"id": uuid7(), "org_id": org_id, "thing_id": thing_id, "knowledge_id": row.id, "role": "label",
             "metadata": metadata} for row in rows
        ])
        await repo.update_source_labels(tx.session, org_id, thing_id, add=[row.name for row in rows])
        await events.thing_links_changed(tx, thing_id, "labeled", [row.id for row in rows], "label")
        return await thing_labels(tx, thing_id)


async def unlabel_thing(ctx: WorkContext, thing_id: UUID, names: Sequence[str]) -> ThingLabels:
    require(ctx.auth, "knowledge", "delete")
    org_id = ctx.auth.org_id
    rows = list((await repo.labels_named(ctx.session, org_id, normalize_all(names))).values())
    removed = await repo.delete_links(ctx.session, org_id, thing_id, [row.id for row in rows], "label")
    if removed:
        await repo.update_source_labels(ctx.session, org_id, thing_id, remove=[row.name for row in rows])
        await events.thing_links_changed(ctx, thing_id, "unlabeled", [row.id for row in rows], "label")
    return await thing_labels(ctx, thing_id)


async def thing_labels(ctx: WorkContext, thing_id: UUID) -> ThingLabels:
    require(ctx.auth, "knowledge", "read")
    links = await repo.links_of_thing(ctx.session, ctx.auth.org_id, thing_id, role="label", cursor=None, limit=1000)
    rows = sorted((item for _, item in links if item.deleted_at is None), key=lambda row: row.name)
    return ThingLabels(thing_id=thing_id, labels=await to_labels(ctx, rows))


async def things_by_labels(ctx: WorkContext, names: Sequence[str], match_all: bool, cursor: UUID | None,
                           limit: int) -> ThingIds:
    require(ctx.auth, "knowledge", "read")
    wanted = normalize_all(names)
    found = await repo.labels_named(ctx.session, ctx.auth.org_id, wanted)
    if match_all and len(found) < len(wanted):
        return ThingIds(thing_ids=[])
    ids = await repo.things_by_labels(ctx.session, ctx.auth.org_id, [row.id for row in found.values()],
                                      match_all=match_all, cursor=cursor, limit=limit)
    return ThingIds(thing_ids=ids, next_cursor=ids[-1] if len(ids) == limit else None)
