"""`one knowledge ingest|status|search|labels|label`: the knowledge service from a terminal.

Commands act as the owner of the API key (`ONE_API_KEY`, or the credentials file `one up`
wrote), verified by tenancy, so RBAC applies as it does to any caller. `ingest` queues each
thing and follows the jobs with a progress bar until every one has finished.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import typer

from shared.tools.cli_events import console, progress_bar
from shared.tools.cli_output import Column, act, print_json, print_table

app = typer.Typer(help="Knowledge: ingest things, follow ingestion, search, labels.", no_args_is_help=True)
T = TypeVar("T")


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    """`await work(one)` as the API key's owner (verified), over the running stack's bus or ONE_URL's gateway."""
    return act(work)


async def _things_of_type(one: Any, thing_type: str) -> list[UUID]:
    ids, cursor = [], None
    while True:
        page = await one.things.query(type=thing_type, cursor=cursor, limit=1000)
        ids += [thing.id for thing in page.things]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


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

    async def work(one: Any) -> list[Any]:
        ids = list(dict.fromkeys([*(things or []), *(await _things_of_type(one, thing_type) if thing_type else [])]))
        if not ids:
            console.print("nothing to ingest: give thing ids or --type")
            raise typer.Exit(1)
        jobs = [await one.knowledge.ingest(i, force=force, vector_only=vector_only, store_text=store_text) for i in ids]
        if not wait:
            return jobs
        with progress_bar() as progress:
            task = progress.add_task("ingesting", total=len(jobs))
            latest = await one.knowledge.wait_for([job.id for job in jobs], timeout=timeout,
                                                  progress=lambda done, _: progress.update(task, completed=done))
        return [latest.get(job.id, job) for job in jobs]

    jobs = _run(work)
    print_table([Column("thing", "id"), Column("status"), Column("chunks"), Column("error", "text")],
                [(job.thing_id, job.status, "" if job.chunks is None else job.chunks, job.error or "") for job in jobs],
                out=console)
    if any(job.status == "failed" for job in jobs):
        raise typer.Exit(1)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="The counts and jobs as JSON.")) -> None:
    """The organization's ingestion jobs by status, and the latest ones."""
    result = _run(lambda one: one.knowledge.ingest_status(limit=20))
    if as_json:
        print_json(result)
        return
    console.print("  ".join(f"{name}: {count}" for name, count in result.counts.items()))
    print_table([Column("job", "id"), Column("thing", "id"), Column("status"), Column("trigger"), Column("chunks"),
                 Column("updated")],
                [(job.id, job.thing_id, job.status, job.trigger, "" if job.chunks is None else job.chunks,
                  job.updated_at.isoformat(timespec="seconds")) for job in result.jobs], out=console)


SEARCH_COLUMNS = [Column("score"), Column("thing", "id"), Column("where"), Column("text", "text")]


def search_rows(hits: list) -> list[list[str]]:
    """Rows for `print_table(SEARCH_COLUMNS, ...)`: the cited thing's full id, `type.field #chunk`, a snippet."""
    rows = []
    for hit in hits:
        item = hit.item
        where = f"{item.source_thing_type or ''}.{item.source_field or ''}".strip(".")
        where += f" #{item.chunk.index}" if item.chunk else ""
        snippet = (item.text or "(vector only)").replace("\n", " ")[:160]
        rows.append([f"{hit.score:.3f}", str(item.source_thing_id or ""), where, snippet])
    return rows


@app.command()
def search(
    query: str,
    k: int = typer.Option(10, "-k", help="How many hits."),
    hybrid: bool = typer.Option(False, help="Fuse semantic, full-text and label signals."),
    label: list[str] = typer.Option(None, "--label", help="Only items carrying this label (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="The hits as JSON, with citations."),
) -> None:
    """Semantic (or hybrid) search over the organization's knowledge, with citations."""
    result = _run(lambda one: one.knowledge.search(query, k=k, labels=label or None, hybrid=hybrid))
    if as_json:
        print_json(result)
        return
    print_table(SEARCH_COLUMNS, search_rows(result.hits), out=console,
                empty="no hits: ingest things first (`one knowledge ingest <thing id>` or `--type <type>`)")


@app.command()
def labels(prefix: str | None = typer.Option(None, help="e.g. skill:"),
           as_json: bool = typer.Option(False, "--json", help="The labels as JSON.")) -> None:
    """The organization's labels with their aliases."""

    async def every(one: Any) -> list[Any]:
        found, cursor = [], None
        while True:
            page = await one.knowledge.labels(prefix=prefix, cursor=cursor, limit=100)
            found += page.labels
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    every_label = _run(every)
    if as_json:
        print_json(every_label)
        return
    for found in every_label:
        aliases = f"  (= {', '.join(found.aliases)})" if found.aliases else ""
        console.print(f"{found.name}{aliases}{'  [deprecated]' if found.deprecated else ''}")


@app.command()
def label(thing: UUID, names: list[str]) -> None:
    """Apply labels to a thing (created on first use)."""
    result = _run(lambda one: one.knowledge.label(thing, names))
    console.print(", ".join(found.name for found in result.labels))
