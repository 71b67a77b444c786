"""Knowledge fixtures: the graph's real organizations (`owner`, `stranger`), things with text, the owner's DB view,
ingestion helpers, and an embedder with a script for the service (to fail or hold a job at will)."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.knowledge import state
from services.knowledge.embedders import Embedder
from shared.contracts.graph import THING_CREATE
from shared.contracts.knowledge import INGEST_STATUS, ITEM_QUERY
from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account, admin  # noqa: F401 (fixtures)


async def make_thing(bus: BusClient, ctx: AuthContext, type_: str = "blog_post", name: str = "A post", **properties: Any) -> Any:
    """A thing whose `properties` are the keyword arguments (its text fields, for ingestion)."""
    return await bus.request(THING_CREATE, {"type": type_, "name": name, "properties": properties}, ctx)


async def settled(bus: BusClient, account: Account, thing_id: Any, jobs: int, timeout: float = 90.0) -> list[Any]:
    """The thing's jobs (newest first) once at least `jobs` of them finished and none is queued or running."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await bus.request(INGEST_STATUS, {"thing_id": str(thing_id)}, account.ctx)
        finished = [j for j in status.jobs if j.status in ("done", "skipped", "failed")]
        if len(finished) >= jobs and not any(j.status in ("queued", "running") for j in status.jobs):
            return status.jobs
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.2)


async def chunks_of(bus: BusClient, account: Account, thing_id: Any, **query: Any) -> list[Any]:
    page = await bus.request(ITEM_QUERY, {"source_thing_id": str(thing_id), "knowledge_type": "chunk", **query},
                             account.ctx)
    return sorted(page.items, key=lambda item: (item.archived_at is not None, item.chunk.index))


async def outbox_events(conn: asyncpg.Connection, org_id: UUID, event_type: str) -> list[dict[str, Any]]:
    """The knowledge service's events of that type for the org, oldest first, as published (envelopes)."""
    rows = await conn.fetch("SELECT convert_from(envelope, 'UTF8') AS e FROM knowledge.outbox WHERE subject LIKE $1 "
                             "ORDER BY created_at", f"%.{org_id}.{event_type}")
    return [json.loads(row["e"]) for row in rows]


class ScriptedEmbedder:
    """The service's own embedder, except for a call with a text containing `marker`: that call is
    counted, signals `entered`, then raises `error` or waits until `release` is set."""

    def __init__(self, inner: Embedder, marker: str, error: Exception | None) -> None:
        self.inner, self.marker, self.error = inner, marker, error
        self.model, self.dim = inner.model, inner.dim
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if any(self.marker in text for text in texts):
            self.calls += 1
            self.entered.set()
            if self.error is not None:
                raise self.error
            await self.release.wait()
        return await self.inner.embed(texts)

    async def warm(self) -> None:
        await self.inner.warm()

    async def close(self) -> None:
        """The service closes its real embedder itself."""


@pytest.fixture
async def scripted(services: dict[str, ServiceRuntime]) -> AsyncIterator[Callable[..., ScriptedEmbedder]]:
    """Installs a `ScriptedEmbedder` in the running knowledge service; the real one is back (and any
    held call released) after the test, so no worker stays stuck."""
    knowledge = state.of(services["knowledge"])
    real = knowledge.embedder
    installed: list[ScriptedEmbedder] = []

    def install(marker: str, error: Exception | None = None) -> ScriptedEmbedder:
        embedder = ScriptedEmbedder(real, marker, error)
        knowledge.embedder = embedder
        installed.append(embedder)
        return embedder

    yield install
    for embedder in installed:
        embedder.release.set()
    knowledge.embedder = real
