"""`one knowledge ingest|status|search|labels|label`: the knowledge service from a terminal.

Commands act as the owner of the API key (`ONE_API_KEY`, or the credentials file `one up`
wrote), verified by tenancy, so RBAC applies as it does to any caller. `ingest` queues each
thing and follows the jobs with a progress bar until every one has finished.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import typer
from rich.table import Table

from shared.contracts.graph import THING_QUERY
from shared.contracts.knowledge import (
    INGEST,
    INGEST_STATUS,
    LABEL_LIST,
    SEARCH,
    SEARCH_HYBRID,
    THING_LABEL,
)
from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient
from shared.tools.cli_events import api_key_or_exit, console, progress_bar, running_settings
from shared.tools.keys import authenticate

app = typer.Typer(help="Knowledge: ingest things, follow ingestion, search, labels.", no_args_is_help=True)
T = TypeVar("T")
FINISHED = ("done", "skipped", "failed")


def _run(work: Callable[[BusClient, AuthContext], Awaitable[T]]) -> T:
    settings = running_settings()
    key = api_key_or_exit(settings)

    async def main() -> T:
        async with await BusClient.connect(settings, name="one-knowledge") as bus:
            return await work(bus, await authenticate(bus, key))

    return asyncio.run(main())


async def _things_of_type(bus: BusClient, ctx: AuthContext, thing_type: str) -> list[UUID]:
    ids, cursor = [], None
    while True:
        page = await bus.request(THING_QUERY, {"type": thing_type, "cursor": cursor, "limit": 1000}, ctx)
        ids += [thing.id for thing in page.things]
        if page.next_cursor is None:
            return ids
        cursor = str(page.next_cursor)


@app.command()
def ingest(
    things: list[UUID] = typer.Argument(None, help="Thing ids to ingest."),
    thing_type: str | None = typer.Option(None, "--type", help="Also every thing of this type."),
    force: bool = typer.Option(False, help="Re-embed even unchanged text."),
    vector_only: bool = typer.Option(False, "--vector-only", help="Keep vectors and hashes only, no text (sticks to the thing)."),
    store_text: bool = typer.Option(False, "--store-text", help="Keep text again for a thing ingested --vector-only."),
    wait: bool = typer.Option(True, help="Follow the jobs with a progress bar until they finish."),
    timeout: float = typer.Option(3600.0, help="Stop following after this many seconds."),
) -> None:
    """Queue things for ingestion (chunk, embed, index) and show the progress."""

    async def work(bus: BusClient, ctx: AuthContext) -> list[Any]:
        ids = list(dict.fromkeys([*(things or []), *(await _things_of_type(bus, ctx, thing_type) if thing_type else [])]))
        if not ids:
            console.print("nothing to ingest: give thing ids or --type")
            raise typer.Exit(1)
        jobs = [await bus.request(INGEST, {"thing_id": str(i), "force": force, "vector_only": vector_only,
                                              "store_text": store_text}, ctx)
                for i in ids]
        if not wait:
            return jobs
        deadline = time.monotonic() + timeout
        with progress_bar() as progress:
            task = progress.add_task("ingesting", total=len(jobs))
            pending = {job.id for job in jobs}
            finished: dict[UUID, Any] = {}
            while pending and time.monotonic() < deadline:
                for start in range(0, len(jobs), 100):
                    batch = [str(j.id) for j in jobs[start:start + 100] if j.id in pending]
                    if not batch:
                        continue
                    status = await bus.request(INGEST_STATUS, {"job_ids": batch, "limit": 100}, ctx)
                    for job in status.jobs:
                        if job.status in FINISHED:
                            pending.discard(job.id)
                            finished[job.id] = job
                progress.update(task, completed=len(finished))
                if pending:
                    await asyncio.sleep(0.5)
        return list(finished.values()) + [job for job in jobs if job.id in pending]

    jobs = _run(work)
    table = Table("thing", "status", "chunks", "error")
    for job in jobs:
        table.add_row(str(job.thing_id), job.status, "" if job.chunks is None else str(job.chunks), job.error or "")
    console.print(table)
    if any(job.status == "failed" for job in jobs):
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """The organization's ingestion jobs by status, and the latest ones."""
    result = _run(lambda bus, ctx: bus.request(INGEST_STATUS, {"limit": 20}, ctx))
    console.print("  ".join(f"{name}: {count}" for name, count in result.counts.items()))
    table = Table("job", "thing", "status", "trigger", "chunks", "updated")
    for job in result.jobs:
        table.add_row(str(job.id), str(job.thing_id), job.status, job.trigger,
                      "" if job.chunks is None else str(job.chunks), job.updated_at.isoformat(timespec="seconds"))
    console.print(table)


@app.command()
def search(
    query: str,
    k: int = typer.Option(10, "-k", help="How many hits."),
    hybrid: bool = typer.Option(False, help="Fuse semantic, full-text and label signals."),
    label: list[str] = typer.Option(None, "--label", help="Only items carrying this label (repeatable)."),
) -> None:
    """Semantic (or hybrid) search over the organization's knowledge, with citations."""
    payload = {"query": query, "k": k, "filters": {"labels": label or []}}
    result = _run(lambda bus, ctx: bus.request(SEARCH_HYBRID if hybrid else SEARCH, payload, ctx, timeout=30))
    table = Table("score", "source", "field", "chunk", "text")
    for hit in result.hits:
        item = hit.item
        source = f"{item.source_thing_type or ''} {item.source_thing_id or ''}".strip()
        position = f"#{item.chunk.index} [{item.chunk.start}:{item.chunk.end}]" if item.chunk else ""
        snippet = (item.text or "(vector only)").replace("\n", " ")[:80]
        table.add_row(f"{hit.score:.3f}", source, item.source_field or "", position, snippet)
    console.print(table)


@app.command()
def labels(prefix: str | None = typer.Option(None, help="e.g. skill:")) -> None:
    """The organization's labels with their aliases."""

    async def every(bus: BusClient, ctx: AuthContext) -> list[Any]:
        found, cursor = [], None
        while True:
            page = await bus.request(LABEL_LIST, {"prefix": prefix, "cursor": cursor, "limit": 100}, ctx)
            found += page.labels
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    for found in _run(every):
        aliases = f"  (= {', '.join(found.aliases)})" if found.aliases else ""
        console.print(f"{found.name}{aliases}{'  [deprecated]' if found.deprecated else ''}")


@app.command()
def label(thing: UUID, names: list[str]) -> None:
    """Apply labels to a thing (created on first use)."""
    result = _run(lambda bus, ctx: bus.request(THING_LABEL, {"thing_id": str(thing), "labels": names}, ctx))
    console.print(", ".join(found.name for found in result.labels))
