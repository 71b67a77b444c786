"""Per-replica state of the knowledge service: its embedder, its tokenizer, its search pool and its
background work.

Kept on the runtime (`runtime.state`, set when the replica starts: replica.py), not in module
globals, so several replicas can run in one process, as the tests do. The local model itself is
loaded once per process by `embedders`.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from services.knowledge.chunking import Tokenizer, load_tokenizer
from services.knowledge.embedders import Embedder, make_embedder
from services.knowledge.repository_search import SearchDb
from services.knowledge.settings import KnowledgeSettings
from shared.runtime.db import app_url, plain_url
from shared.runtime.service import ServiceRuntime

if TYPE_CHECKING:
    from services.knowledge.jobs import Trigger, Workers


@dataclass
class KnowledgeState:
    embedder: Embedder
    tokenizer: Tokenizer
    search_db: SearchDb
    org_sizes: dict[tuple[UUID, str, int], tuple[bool, float]] = field(default_factory=dict)
    """(org, model, dim) -> (at least `knowledge_exact_below` vectors?, until when): search's cache."""
    workers: "Workers | None" = None  # started with the replica
    trigger: "Trigger | None" = None  # when graph events trigger ingestion


def create(settings: KnowledgeSettings) -> KnowledgeState:
    search_db = SearchDb(plain_url(app_url(settings)), settings.db_pool_size)
    return KnowledgeState(embedder=make_embedder(settings), tokenizer=load_tokenizer(settings), search_db=search_db)


def of(runtime: ServiceRuntime) -> KnowledgeState:
    """This replica's state (the runtime holds it untyped)."""
    return runtime.state
