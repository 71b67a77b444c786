"""External agents of an org: add (resolve the card over HTTP, validate it, keep it), read, re-credential, archive.

An external agent is an `external_agent` thing in the graph (same id: `platform: custom`, the card's provider
as `provider`, `protocol: a2a`) with its card and credential kept here. Adding one is done in steps so no
transaction waits on the network or the bus: the card is fetched first, the thing is created through the graph
(idempotently, keyed by the slug), then the row is written. The credential is never returned.
"""

import re
from typing import Any

from services.agents import a2a_client, keys, repository_external as repo
from services.agents.models_external import ExternalAgentRow
from shared.contracts.agents.external import (
    ExternalAgent,
    ExternalAgentAdd,
    ExternalAgentCredentials,
    ExternalAgentExists,
    ExternalAgentNotFound,
    ExternalAgentPage,
    ExternalAgentQuery,
    ExternalAgentRef,
    ExternalInterface,
    ExternalSkill,
)
from shared.contracts.graph import THING_ARCHIVE, THING_CREATE, THING_UPDATE
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


def _slug_of(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50].strip("-")
    return slug or "external-agent"


def to_record(row: ExternalAgentRow) -> ExternalAgent:
    card = row.card
    provider = card.get("provider") or {}
    return ExternalAgent(
        id=row.id, slug=row.slug, name=row.name, description=row.description, card_url=row.card_url,
        provider=row.provider, provider_url=provider.get("url", ""), version=card.get("version", ""),
        streaming=row.streaming,
        skills=[ExternalSkill(id=s.get("id", ""), name=s.get("name", ""), description=s.get("description", ""),
                              tags=s.get("tags") or []) for s in card.get("skills") or []],
        interfaces=[ExternalInterface(url=i.get("url", ""), protocol_binding=i.get("protocolBinding", ""),
                                      protocol_version=i.get("protocolVersion", ""))
                    for i in card.get("supportedInterfaces") or []],
        security_schemes=sorted((card.get("securitySchemes") or {}).keys()),
        has_credentials=bool(row.credential or row.credential_sealed),
        credentials_hint=row.credential_hint or (f"...{row.credential[-4:]}" if row.credential else None),
        timeout=row.timeout, status=row.status, messages_sent=row.messages_sent,
        messages_received=row.messages_received, last_used_at=row.last_used_at, resolved_at=row.resolved_at,
        created_at=row.created_at, updated_at=row.updated_at, archived_at=row.archived_at, card=card,
    )


def _card_columns(card: dict[str, Any]) -> dict[str, Any]:
    return {"name": card["name"], "description": card.get("description", ""), "card": card,
            "provider": (card.get("provider") or {}).get("organization", ""),
            "streaming": bool((card.get("capabilities") or {}).get("streaming"))}


def _thing_properties(card_url: str, columns: dict[str, Any]) -> dict[str, Any]:
    card = columns["card"]
    interfaces = card.get("supportedInterfaces") or [{}]
    return {
        "platform": "custom", "agentId": card_url, "name": columns["name"], "description": columns["description"],
        "capabilities": [s.get("id", "") for s in card.get("skills") or []], "apiEndpoint": interfaces[0].get("url"),
        "status": "online", "protocol": "a2a", "provider": columns["provider"], "cardUrl": card_url,
        "metadata": {"protocol": "a2a", "platform": columns["provider"], "streaming": columns["streaming"],
                     "version": card.get("version", "")},
    }


async def _load(ctx: WorkContext, ref: ExternalAgentRef, *, for_update: bool = False) -> ExternalAgentRow:
    row = await repo.get(ctx.session, ctx.auth.org_id, slug=ref.slug, agent_id=ref.id, for_update=for_update)
    if row is None:
        raise ExternalAgentNotFound(f"no external agent {ref.slug or ref.id} in this organization")
    return row


async def add(ctx: WorkContext, payload: ExternalAgentAdd) -> ExternalAgent:
    require(ctx.auth, "agents", "create")
    card = await a2a_client.resolve_card(payload.card_url)
    columns = _card_columns(card)
    slug = payload.slug or _slug_of(columns["name"])
    async with ctx.transaction() as tx:
        clash = await repo.taken(tx.session, ctx.auth.org_id, slug, payload.card_url)
    if clash:
        raise ExternalAgentExists(f"the {clash.replace('_', ' ')} is taken by an external agent of this organization",
                                  {"field": clash, "slug": slug})
    thing = await ctx.call(THING_CREATE, {
        "type": "external_agent", "name": columns["name"], "status": "active",
        "idempotency_key": f"agents.external:{slug}", "properties": _thing_properties(payload.card_url, columns),
    })
    async with ctx.transaction() as tx:
        row = await repo.insert(tx.session, {
            "id": thing.id, "org_id": ctx.auth.org_id, "slug": slug, "card_url": payload.card_url, **columns,
            **await keys.credential_columns(ctx.runtime, ctx.auth.org_id, thing.id, payload.api_key),
            "timeout": payload.timeout, "created_by": ctx.auth.actor_id,
        })
        if row is None:
            raise ExternalAgentExists("the slug or the card URL was taken meanwhile", {"slug": slug})
        return to_record(row)


async def get(ctx: WorkContext, ref: ExternalAgentRef) -> ExternalAgent:
    require(ctx.auth, "agents", "read")
    return to_record(await _load(ctx, ref))


async def list_page(ctx: WorkContext, query: ExternalAgentQuery) -> ExternalAgentPage:
    require(ctx.auth, "agents", "list")
    rows = await repo.list_page(ctx.session, ctx.auth.org_id, include_archived=query.include_archived,
                                cursor=query.cursor, limit=query.limit)
    return ExternalAgentPage(external_agents=[to_record(r) for r in rows],
                             next_cursor=rows[-1].id if len(rows) == query.limit else None)


async def set_credentials(ctx: WorkContext, payload: ExternalAgentCredentials) -> ExternalAgent:
    """Replace (or, without `api_key`, remove) the credential; the event says which, never what."""
    require(ctx.auth, "agents", "update")
    row = await _load(ctx, payload, for_update=True)
    columns = await keys.credential_columns(ctx.runtime, ctx.auth.org_id, row.id, payload.api_key)
    row = await repo.update(ctx.session, ctx.auth.org_id, row.id, columns)
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=row.type, metadata={
        "entityType": row.type, "change": "credentials", "hasCredentials": payload.api_key is not None,
        "protocol": "a2a"})
    return to_record(row)


async def refresh(ctx: WorkContext, ref: ExternalAgentRef) -> ExternalAgent:
    """Fetch the card again (the remote may have changed its skills, interfaces or streaming)."""
    require(ctx.auth, "agents", "update")
    async with ctx.transaction() as tx:
        row = await _load(tx, ref)
    columns = _card_columns(await a2a_client.resolve_card(row.card_url))
    async with ctx.transaction() as tx:
        row = await repo.update(tx.session, ctx.auth.org_id, row.id, {**columns, "resolved_at": repo.NOW})
    await ctx.call(THING_UPDATE, {"id": str(row.id), "name": row.name,
                                  "properties": _thing_properties(row.card_url, columns)})
    return to_record(row)


async def archive(ctx: WorkContext, ref: ExternalAgentRef) -> ExternalAgent:
    require(ctx.auth, "agents", "archive")
    async with ctx.transaction() as tx:
        row = await _load(tx, ref, for_update=True)
        already = row.status == "archived"
        if not already:
            row = await repo.update(tx.session, ctx.auth.org_id, row.id, {"status": "archived",
                                                                          "archived_at": repo.NOW})
    if not already:
        await ctx.call(THING_ARCHIVE, {"id": str(row.id)})  # the graph emits entity_archived
    return to_record(row)
