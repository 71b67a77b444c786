"""A run's context: system prompt, the agent's prompts rendered, retrieved knowledge with citations, recent history.

Retrieval asks the knowledge service, as the run's caller, for the items nearest the message within the
agent's scope (labels, source things); each hit becomes a numbered excerpt the model can cite as `[n]`
and a `Citation` kept on the run. Only the text of earlier user and assistant messages is replayed:
tool traffic of earlier runs stays in their steps. The whole context is stored in the run's first step,
so a replica resuming the run continues from the same context, not a fresh retrieval.
"""

import logging
from dataclasses import asdict
from typing import Any

from services.agents import repository_conversations as conversations
from services.agents.providers.base import ChatMessage, ToolCall
from services.agents.service_prompts import rendered_for_run
from shared.contracts.agents import Citation, Message, RenderedPrompt
from shared.contracts.knowledge import SEARCH
from shared.kernel.errors import OneError
from shared.runtime.context import WorkContext

log = logging.getLogger(__name__)

EXCERPT_CHARS = 1200
PreRead = tuple[list[RenderedPrompt], list[Message]]


def retrieves(config: dict[str, Any]) -> bool:
    """Whether a run of this config asks the knowledge service for its context (its scope is enabled)."""
    return bool((config.get("knowledge") or {}).get("enabled", True))


async def retrieve(ctx: WorkContext, scope: dict[str, Any], query: str, auth: Any = None) -> list[Citation]:
    """The knowledge hits for `query` within the scope, best first, numbered from 1."""
    if not scope.get("enabled", True):
        return []
    base = {"labels": scope.get("labels") or [], "knowledge_types": ["chunk"]}  # not conversations' messages
    sources = scope.get("source_thing_ids") or [None]
    hits = []
    for source in sources:
        filters = {**base, **({"source_thing_id": str(source)} if source else {})}
        found = await ctx.call(SEARCH, {"query": query[:8000], "k": scope.get("k", 4), "filters": filters}, auth=auth)
        hits += found.hits
    hits = sorted(hits, key=lambda hit: hit.score, reverse=True)[: scope.get("k", 4)]
    return [
        Citation(index=i, item_id=hit.item.id, source_thing_id=hit.item.source_thing_id,
                 source_field=hit.item.source_field, chunk_index=hit.item.chunk.index if hit.item.chunk else None,
                 score=hit.score, excerpt=(hit.item.text or "")[:EXCERPT_CHARS])
        for i, hit in enumerate(hits, start=1)
    ]


def knowledge_message(citations: list[Citation]) -> ChatMessage:
    lines = ["Knowledge from the organization (answer from it when it is relevant; cite it as [n]):"]
    lines += [f"[{c.index}] {c.excerpt}" for c in citations]
    return ChatMessage("system", "\n".join(lines))


async def read_context(tx: WorkContext, run: Any, agent: Any, history: list[Message] | None = None) -> PreRead:
    """What a run's context reads from the database: the agent's prompts rendered and the conversation's recent
    messages (`history` when the caller knows them: the messages of the conversation it just opened)."""
    request = run.request or {}
    prompts = await rendered_for_run(tx, agent.prompts, request.get("variables") or {},
                                     request.get("step")) if agent.prompts else []
    if history is None:
        history = await conversations.recent_messages(tx.session, run.org_id, run.conversation_id,
                                                      tx.runtime.settings.agents_history_messages)
    return prompts, history


async def build_context(ctx: WorkContext, run: Any, agent: Any, config: dict[str, Any], message: str,
                        supports_tools: bool, preread: PreRead | None = None,
                        ) -> tuple[list[ChatMessage], list[Citation], str | None]:
    """The messages the model starts from, the citations among them, and why retrieval failed (if it did).
    `preread`: what `read_context` read already (in the transaction that started the run)."""
    context = [ChatMessage("system", config.get("system_prompt") or "You are a helpful assistant.")]
    if preread is None:
        async with ctx.transaction() as tx:
            preread = await read_context(tx, run, agent)
    prompts, history = preread
    context += [ChatMessage("system", f"[{p.step.value}] {p.text}") for p in prompts]
    citations, retrieval_error = [], None
    try:
        citations = await retrieve(ctx, config.get("knowledge") or {}, message)
    except OneError as error:  # the run goes on without knowledge, and says so in its steps
        retrieval_error = f"{error.code}: {error.message}"
    if citations:
        context.append(knowledge_message(citations))
    if not supports_tools:
        context.append(ChatMessage("system", "No tools are available to you in this conversation: answer in words."))
    replayed = [m for m in history if m.role in ("user", "assistant") and m.content and not m.tool_calls]
    if not replayed or replayed[-1].content != message:
        replayed.append(None)  # the run's own message was not stored in this conversation (a delegated task)
    context += [ChatMessage(m.role, m.content) if m else ChatMessage("user", message) for m in replayed]
    return context, citations, retrieval_error


def dump_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(m).items() if v not in (None, ())} for m in messages]


def load_messages(data: list[dict[str, Any]]) -> list[ChatMessage]:
    return [
        ChatMessage(m["role"], m.get("content"), tuple(ToolCall(**c) for c in m.get("tool_calls") or ()),
                    m.get("tool_call_id"), m.get("name"))
        for m in data
    ]
