"""A pack's parts that other services own, installed and removed over the bus as the caller.

Each step looks before it creates, so running it again finds what it made and creates nothing twice:
type schemas are keyed by (org, type) and owned by the pack's `source`; field masks by their natural key
(role, type, field); prompts by name among the active prompts tagged with the pack's `source`; agents by
slug. The graph and the agents service check the caller's permissions and log their own events.
"""

import asyncio
from collections.abc import Awaitable, Collection
from typing import Any, TypeVar

from shared.contracts.agents import (
    AGENT_ARCHIVE,
    AGENT_CREATE,
    AGENT_GET,
    AGENT_LIST,
    PROMPT_ARCHIVE,
    PROMPT_ATTACH,
    PROMPT_CREATE,
    PROMPT_LIST,
    Agent,
    AgentQuery,
    AgentRef,
    Prompt,
    PromptAttach,
    PromptCreate,
    PromptQuery,
    PromptTarget,
)
from shared.contracts.graph.access import (
    MASK_LIST,
    MASK_REMOVE,
    MASK_SET,
    AccessRuleFilter,
    AccessRuleTarget,
    FieldMask,
    FieldMaskSet,
)
from shared.contracts.graph.schemas import TYPE_SCHEMA_REMOVE, TYPE_SCHEMA_SET, TypeSchemaRemove, TypeSchemaSet
from shared.contracts.tenancy.packs import PackDocument, PackItem
from shared.kernel.errors import NotFound
from shared.runtime.context import WorkContext

_SAVED = {"created": "created", "updated": "updated", "unchanged": "existing"}
T = TypeVar("T")


async def all_of(*steps: Awaitable[T]) -> list[T]:
    """Run independent steps at once and let each finish (nothing is cut off halfway); then raise the first failure."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


async def _set_type_schema(ctx: WorkContext, pack: PackDocument, declared: Any) -> PackItem:
    saved = await ctx.call(TYPE_SCHEMA_SET, TypeSchemaSet(
        type=declared.type, properties_schema=declared.properties_schema, source=pack.source,
        description=declared.description))
    return PackItem(kind="thing_type", name=declared.type, outcome=_SAVED[saved.outcome])  # type: ignore[arg-type]


async def install_type_schemas(ctx: WorkContext, pack: PackDocument) -> list[PackItem]:
    return await all_of(*(_set_type_schema(ctx, pack, declared) for declared in pack.thing_types))


async def _remove_type_schema(ctx: WorkContext, pack: PackDocument, thing_type: str) -> PackItem:
    removal = await ctx.call(TYPE_SCHEMA_REMOVE, TypeSchemaRemove(type=thing_type, source=pack.source))
    return PackItem(kind="thing_type", name=thing_type, outcome=removal.outcome, reason=removal.reason)


async def remove_type_schemas(ctx: WorkContext, pack: PackDocument) -> list[PackItem]:
    return await all_of(*(_remove_type_schema(ctx, pack, declared.type) for declared in pack.thing_types))


def _mask_key(role: str, thing_type: str, field: str) -> str:
    return f"{role}:{thing_type}:{field}"


async def _pack_masks(ctx: WorkContext, pack: PackDocument) -> list[tuple[FieldMaskSet, str, FieldMask | None]]:
    """Each of the pack's masks, its key, and the org's stored mask of that key (if any)."""
    if not pack.field_masks:
        return []
    stored = {_mask_key(m.role, m.thing_type, m.field): m for m in (await ctx.call(MASK_LIST, AccessRuleFilter())).masks}
    keys = [_mask_key(mask.role, mask.thing_type, mask.field) for mask in pack.field_masks]
    return [(mask, key, stored.get(key)) for mask, key in zip(pack.field_masks, keys, strict=True)]


async def install_field_masks(ctx: WorkContext, pack: PackDocument) -> list[PackItem]:
    items = []
    for mask, key, have in await _pack_masks(ctx, pack):
        if have is not None and (have.mode, have.priority) == (mask.mode, mask.priority):
            items.append(PackItem(kind="field_mask", name=key, outcome="existing"))
            continue
        await ctx.call(MASK_SET, mask)
        items.append(PackItem(kind="field_mask", name=key, outcome="created" if have is None else "updated"))
    return items


async def remove_field_masks(ctx: WorkContext, pack: PackDocument, kept_roles: Collection[str]) -> list[PackItem]:
    """The pack's masks go, except those of a role that stays (its members' view must not widen)."""
    items = []
    for mask, key, have in await _pack_masks(ctx, pack):
        if have is None:
            items.append(PackItem(kind="field_mask", name=key, outcome="absent"))
        elif mask.role in kept_roles:
            items.append(PackItem(kind="field_mask", name=key, outcome="kept",
                                  reason=f"role {mask.role} stays: its members keep the mask"))
        else:
            await ctx.call(MASK_REMOVE, AccessRuleTarget(id=have.id))
            items.append(PackItem(kind="field_mask", name=key, outcome="removed"))
    return items


async def _all_pages(ctx: WorkContext, spec: Any, query: Any, field: str) -> list[Any]:
    found, cursor = [], None
    while True:
        page = await ctx.call(spec, query.model_copy(update={"cursor": cursor}))
        found += getattr(page, field)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def _pack_prompts(ctx: WorkContext, pack: PackDocument) -> dict[str, Prompt]:
    """The pack's active prompts, by name (tagged with the pack's source when it made them)."""
    prompts = await _all_pages(ctx, PROMPT_LIST, PromptQuery(limit=200), "prompts")
    return {p.name: p for p in prompts if pack.source in p.tags}


async def install_prompts(ctx: WorkContext, pack: PackDocument) -> tuple[list[PackItem], dict[str, Prompt]]:
    stored, items = await _pack_prompts(ctx, pack), []
    for prompt in pack.prompts:
        if prompt.name in stored:
            items.append(PackItem(kind="prompt", name=prompt.name, outcome="existing"))
            continue
        tags = [*prompt.tags, pack.source]
        stored[prompt.name] = await ctx.call(PROMPT_CREATE, PromptCreate(**{**prompt.model_dump(), "tags": tags}))
        items.append(PackItem(kind="prompt", name=prompt.name, outcome="created"))
    return items, stored


async def _agent(ctx: WorkContext, slug: str) -> Agent | None:
    try:
        return await ctx.call(AGENT_GET, AgentRef(slug=slug))
    except NotFound:
        return None


async def install_prompts_and_agents(ctx: WorkContext, pack: PackDocument) -> list[PackItem]:
    """Prompts first: the agents attach them."""
    items, prompts = await install_prompts(ctx, pack)
    return items + await install_agents(ctx, pack, prompts)


async def install_agents(ctx: WorkContext, pack: PackDocument, prompts: dict[str, Prompt]) -> list[PackItem]:
    items = []
    for declared in pack.agents:
        agent = await _agent(ctx, declared.slug)
        if agent is None:
            agent = await ctx.call(AGENT_CREATE, declared.model_dump(exclude={"prompts"}))
            items.append(PackItem(kind="agent", name=declared.slug, outcome="created"))
        elif agent.status == "archived":
            items.append(PackItem(kind="agent", name=declared.slug, outcome="kept",
                                  reason="an archived agent has this slug: the pack does not revive it"))
            continue
        else:
            items.append(PackItem(kind="agent", name=declared.slug, outcome="existing"))
        for name in declared.prompts:
            if prompts[name].id not in agent.prompts:
                await ctx.call(PROMPT_ATTACH, PromptAttach(slug=declared.slug, prompt_id=prompts[name].id))
    return items


async def remove_agents_and_prompts(ctx: WorkContext, pack: PackDocument) -> list[PackItem]:
    """Archive the pack's agents, then its prompts unless an agent that is not the pack's uses one."""
    items, slugs = [], {a.slug for a in pack.agents}
    for declared in pack.agents:
        agent = await _agent(ctx, declared.slug)
        if agent is None or agent.status == "archived":
            items.append(PackItem(kind="agent", name=declared.slug, outcome="absent"))
            continue
        await ctx.call(AGENT_ARCHIVE, AgentRef(slug=declared.slug))
        items.append(PackItem(kind="agent", name=declared.slug, outcome="removed"))
    agents = await _all_pages(ctx, AGENT_LIST, AgentQuery(limit=200), "agents")
    users = {pid: a.slug for a in agents if a.slug not in slugs and a.status == "active" for pid in a.prompts}
    stored = await _pack_prompts(ctx, pack)
    for prompt in pack.prompts:
        found = stored.get(prompt.name)
        if found is None:
            items.append(PackItem(kind="prompt", name=prompt.name, outcome="absent"))
        elif found.id in users:
            items.append(PackItem(kind="prompt", name=prompt.name, outcome="kept",
                                  reason=f"agent {users[found.id]} uses it"))
        else:
            await ctx.call(PROMPT_ARCHIVE, PromptTarget(id=found.id))
            items.append(PackItem(kind="prompt", name=prompt.name, outcome="removed"))
    return items
