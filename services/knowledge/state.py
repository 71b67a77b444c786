"""Per-replica state of the knowledge service: its embedder, its tokenizer and its background work.

Kept beside the runtime (not in module globals) so several replicas can run in one process, as
the tests do. The local model itself is loaded once per process by `embedders`.
"""

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from services.knowledge.chunking import Tokenizer, load_tokenizer
from services.knowledge.embedders import Embedder, make_embedder
from services.knowledge.repository_search import SearchDb
from shared.runtime.db import app_url, plain_url
from shared.runtime.handlers import RequestContext
from shared.runtime.service import ServiceRuntime


@dataclass
class KnowledgeState:
    embedder: Embedder
    tokenizer: Tokenizer
    search_db: SearchDb
    workers: Any = None  # jobs.Workers, started with the service
    trigger: Any = None  # jobs.Trigger, when graph events trigger ingestion


_states: "weakref.WeakKeyDictionary[ServiceRuntime, KnowledgeState]" = weakref.WeakKeyDictionary()


def create(runtime: ServiceRuntime) -> KnowledgeState:
    settings = runtime.settings
    search_db = SearchDb(plain_url(app_url(settings)), settings.db_pool_size)
    state = KnowledgeState(embedder=make_embedder(settings), tokenizer=load_tokenizer(settings), search_db=search_db)
    _states[runtime] = state
    return state


def of(runtime: ServiceRuntime) -> KnowledgeState:
    return _states[runtime]


def pop(runtime: ServiceRuntime) -> KnowledgeState | None:
    return _states.pop(runtime, None)


@asynccontextmanager
async def unit_of_work(ctx: RequestContext) -> AsyncIterator[RequestContext]:
    """A transaction opened late by a non-transactional handler (after slow work such as
    embedding, which must not hold a connection): a context with a session, relay woken after."""
    async with ctx.runtime.db.transaction(ctx.auth.org_id) as session:
        tx = RequestContext(ctx.envelope, session, ctx.runtime)
        yield tx
    if tx.staged_events:
        ctx.runtime.relay.wake()
