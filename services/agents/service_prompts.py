"""Prompts: templates per ELEVATE step with `{{variable}}` placeholders, attached to agents and rendered into runs.

Rendering is plain substitution (no expressions, no code): a value given for a variable replaces its
placeholder, a missing one renders empty and is reported, so a template can never run anything.
"""

import re
from uuid import UUID

from services.agents import repository as repo
from services.agents.rows import PromptRow
from services.agents.service_agents import load_agent, to_agents
from shared.contracts.agents import (
    Agent,
    Prompt,
    PromptAttach,
    PromptCreate,
    PromptNotFound,
    PromptPage,
    PromptQuery,
    PromptRender,
    PromptUpdate,
    RenderedPrompt,
)
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def variables_of(template: str) -> list[str]:
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def render(row: PromptRow, values: dict[str, str]) -> RenderedPrompt:
    missing = [name for name in row.variables if name not in values]
    text = _PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), row.template)
    return RenderedPrompt(prompt_id=row.id, step=row.step, text=text, missing=missing)


def to_prompt(row: PromptRow) -> Prompt:
    return Prompt.model_validate(row, from_attributes=True)


async def _load(ctx: WorkContext, prompt_id: UUID) -> PromptRow:
    row = await repo.get_prompt(ctx.session, ctx.auth.org_id, prompt_id)
    if row is None:
        raise PromptNotFound(f"no prompt {prompt_id} in this organization")
    return row


async def create_prompt(ctx: WorkContext, payload: PromptCreate) -> Prompt:
    require(ctx.auth, "agents", "create")
    row = await repo.insert_prompt(ctx.session, {
        "id": uuid7(), "org_id": ctx.auth.org_id, "name": payload.name, "step": payload.step.value,
        "template": payload.template, "variables": variables_of(payload.template), "description": payload.description,
        "tags": payload.tags,
    })
    await ctx.emit(EventType.CONTENT_EVENT, target_id=row.id, target_type="prompt",
                   metadata={"action": "created", "contentType": "prompt", "step": row.step})
    return to_prompt(row)


async def get_prompt(ctx: WorkContext, prompt_id: UUID) -> Prompt:
    require(ctx.auth, "agents", "read")
    return to_prompt(await _load(ctx, prompt_id))


async def list_prompts(ctx: WorkContext, query: PromptQuery) -> PromptPage:
    require(ctx.auth, "agents", "list")
    rows = await repo.list_prompts(ctx.session, ctx.auth.org_id, step=query.step, include_archived=query.include_archived,
                                   cursor=query.cursor, limit=query.limit)
    return PromptPage(prompts=[to_prompt(r) for r in rows], next_cursor=rows[-1].id if len(rows) == query.limit else None)


async def update_prompt(ctx: WorkContext, payload: PromptUpdate) -> Prompt:
    require(ctx.auth, "agents", "update")
    await _load(ctx, payload.id)
    values = payload.model_dump(exclude={"id"}, exclude_none=True)
    if "template" in values:
        values["variables"] = variables_of(values["template"])
    row = await repo.update_prompt(ctx.session, ctx.auth.org_id, payload.id, values)
    await ctx.emit(EventType.CONTENT_EVENT, target_id=payload.id, target_type="prompt",
                   metadata={"action": "updated", "contentType": "prompt", "fields": sorted(values)})
    return to_prompt(row)


async def archive_prompt(ctx: WorkContext, prompt_id: UUID) -> Prompt:
    require(ctx.auth, "agents", "archive")
    await _load(ctx, prompt_id)
    row = await repo.update_prompt(ctx.session, ctx.auth.org_id, prompt_id, {"status": "archived"})
    await ctx.emit(EventType.CONTENT_EVENT, target_id=prompt_id, target_type="prompt",
                   metadata={"action": "deleted", "contentType": "prompt"})
    return to_prompt(row)


async def render_prompt(ctx: WorkContext, payload: PromptRender) -> RenderedPrompt:
    require(ctx.auth, "agents", "read")
    return render(await _load(ctx, payload.id), payload.variables)


async def attach_prompt(ctx: WorkContext, payload: PromptAttach, *, attach: bool) -> Agent:
    require(ctx.auth, "agents", "update")
    agent = await load_agent(ctx, payload, for_update=True)
    await _load(ctx, payload.prompt_id)
    prompts = [p for p in agent.prompts if p != payload.prompt_id] + ([payload.prompt_id] if attach else [])
    row = await repo.update_agent(ctx.session, ctx.auth.org_id, agent.id, {"prompts": prompts})
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=row.type, metadata={
        "entityType": row.type, "change": "prompt_attached" if attach else "prompt_detached",
        "promptId": str(payload.prompt_id)})
    return (await to_agents(ctx, [row]))[0]


async def rendered_for_run(ctx: WorkContext, prompt_ids: list[UUID], values: dict[str, str],
                           step: str | None) -> list[RenderedPrompt]:
    """The agent's active prompts rendered, in attachment order; with a step, only that step's prompts."""
    rows = await repo.prompts_by_ids(ctx.session, ctx.auth.org_id, prompt_ids)
    return [render(row, values) for row in rows if step is None or row.step == step]
