"""`one publish` and `one events tail|query|history|revenue|archive|import|replay|deadletters`.

Commands act through the SDK as the owner of the API key (`ONE_API_KEY`, or the
credentials file `one up` wrote), verified by tenancy, over the running stack's bus or,
with `ONE_URL` / `--url`, over the gateway. `--org` acts in another org: a platform
owner's key only, logged there as cross-org access. `archive` and `import` run the
retention job over the owner database connection.
"""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from shared.kernel.envelope import Protocol
from shared.tools.cli_output import Column, act, fail, json_lines, json_object, print_json, print_table
from shared.tools.sdk.events import Events
from shared.tools.stack import effective_settings, service_module, settings_of

app = typer.Typer(help="The event log: query, tail, analytics, archive, replay.", no_args_is_help=True)
console = Console()
T = TypeVar("T")
NO_ACTOR = UUID(int=0)

OrgOption = typer.Option(None, "--org", help="Act in this organization: a platform owner's key only (logged there as "
                         "cross-org access); default: the API key's org.")


def _run(org: UUID | None, work: Callable[[Events], Awaitable[T]], protocol: Protocol = Protocol.NATIVE) -> T:
    """Act as the API key's owner (verified), in `--org` only with a platform owner's key; over the bus or HTTP."""

    async def on(one: Any) -> T:
        if protocol != Protocol.NATIVE:
            if one.kind != "bus":
                fail(f"--protocol {protocol} stamps the bus envelope: it needs the bus, not ONE_URL",
                     "run it where the stack runs (unset ONE_URL), or publish with --protocol native")
            one.transport.protocol = protocol
        return await work(one.events)

    return act(on, org=org)


def _retention() -> ModuleType:
    """The event log's retention job: it runs here, over the owner's database connection, not over the bus."""
    return service_module("eventlog", "retention")


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console)


def _filters(types: list[str] | None, actor_id: UUID | None, target: UUID | None, thing: UUID | None,
             protocols: list[str] | None, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    return {
        "types": types or [], "actor_id": actor_id, "target_id": target, "thing_id": thing, "protocols": protocols or [],
        "since": since.replace(tzinfo=since.tzinfo or UTC) if since else None,
        "until": until.replace(tzinfo=until.tzinfo or UTC) if until else None,
    }


REVENUE_STATUSES = ("processed",)
"""What `one events revenue` counts by default: payments that went through (x402 too: `verified` is only the
facilitator's check before settling, `processed` the settlement, so counting both would count a sale twice)."""


def merge_revenue(results: list) -> list[dict[str, Any]]:
    """Totals of several revenue answers (one per status), summed per protocol and currency."""
    merged: dict[tuple[str, str | None], dict[str, Any]] = {}
    for result in results:
        for row in result.totals:
            into = merged.setdefault((row.protocol, row.currency),
                                     {"protocol": row.protocol, "currency": row.currency, "total": 0, "count": 0})
            into["total"] += row.total
            into["count"] += row.count
    return [{**r, "total": str(r["total"])} for r in sorted(merged.values(), key=lambda r: (r["protocol"], r["currency"] or ""))]


EVENT_COLUMNS = [Column("position"), Column("occurred_at"), Column("type"), Column("protocol"), Column("actor", "id"),
                 Column("target", "id"), Column("metadata", "text")]


def event_rows(events: list) -> list[list[str]]:
    """Rows for `print_table(EVENT_COLUMNS, ...)`: full ids, metadata as compact JSON (it wraps)."""
    return [[str(e.position), e.occurred_at.isoformat(timespec="seconds"), e.type, e.protocol,
             str(e.actor_id or "") if e.actor_id != NO_ACTOR else "", str(e.target_id or ""),
             json.dumps(e.metadata, separators=(",", ":"))] for e in events]


def _print_events(events: list, as_json: bool) -> None:
    if as_json:
        for e in events:
            print(e.model_dump_json())
        return
    print_table(EVENT_COLUMNS, event_rows(events), out=console, empty="no events match")


def publish(
    type: str = typer.Option(None, "--type", help="Event type (canonical or granular); omit with --stdin."),
    org: UUID | None = OrgOption,
    protocol: Protocol = typer.Option(Protocol.NATIVE, "--protocol"),
    meta: str = typer.Option(None, "--meta", help="Metadata: JSON or @file.json."),
    target: UUID = typer.Option(None, "--target"),
    target_type: str = typer.Option(None, "--target-type"),
    stdin: bool = typer.Option(False, "--stdin", help="Read many events as JSON lines from stdin."),
) -> None:
    """Publish one event (or many, one JSON object per stdin line) to the event log."""
    if stdin:
        items = json_lines(sys.stdin)
        with progress_bar() as bar:
            task = bar.add_task("publishing", total=len(items))
            appended = _run(org, lambda c: c.publish_many(items, progress=lambda d, t: bar.update(task, completed=d)),
                            protocol)
        duplicates = sum(a.duplicate for a in appended)
        console.print(f"published {len(appended)} events ({duplicates} duplicates)")
        return
    if not type:
        raise typer.BadParameter("--type is required unless --stdin")
    metadata = json_object(meta, "--meta")  # bad JSON is a one-line usage error before anything connects
    result = _run(org, lambda c: c.publish(type, target_id=target, target_type=target_type, metadata=metadata),
                  protocol)
    print(result.model_dump_json())


@app.command()
def query(
    org: UUID | None = OrgOption,
    types: list[str] = typer.Option(None, "--type"),
    by: UUID = typer.Option(None, "--by", help="Events caused by this actor."),
    target: UUID = typer.Option(None, "--target"),
    thing: UUID = typer.Option(None, "--thing", help="Events with this thing as actor or target."),
    protocols: list[str] = typer.Option(None, "--protocol"),
    since: datetime = typer.Option(None), until: datetime = typer.Option(None),
    after: int = typer.Option(None, help="Cursor: positions after this."),
    limit: int = typer.Option(100), desc: bool = typer.Option(False, help="Newest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """An org's events with any mix of filters; prints the cursor for the next page."""
    filters = _filters(types, by, target, thing, protocols, since, until)
    page = _run(org, lambda c: c.query(**filters, after=after, order="desc" if desc else "asc", limit=limit))
    _print_events(page.events, as_json)
    if page.next_cursor is not None and not as_json:
        console.print(f"next page: --after {page.next_cursor}" if not desc else f"next cursor: {page.next_cursor}")


@app.command()
def tail(
    org: UUID | None = OrgOption,
    types: list[str] = typer.Option(None, "--type"),
    by: UUID = typer.Option(None, "--by"),
    target: UUID = typer.Option(None, "--target"),
    protocols: list[str] = typer.Option(None, "--protocol"),
    after: int = typer.Option(None, help="Start after this position (resume where a tail stopped)."),
    from_start: bool = typer.Option(False, "--from-start", help="Replay the whole hot log first, then follow."),
) -> None:
    """Follow an org's new events as JSON lines, from now on by default; Ctrl-C prints the position to resume from."""
    filters = _filters(types, by, target, None, protocols, None, None)

    async def follow(client: Events) -> None:
        start = 0 if from_start else after
        if start is None:  # from now: after the org's newest event
            newest = (await client.query(order="desc", limit=1)).events
            start = newest[0].position if newest else 0
        try:
            async for event in client.tail(after=start, **filters):
                print(event.model_dump_json(), flush=True)
        finally:
            console.print(f"resume with --after {client.cursor}", style="dim")

    try:
        _run(org, follow)
    except KeyboardInterrupt:
        pass


@app.command()
def revenue(
    org: UUID | None = OrgOption,
    days: float = typer.Option(30.0, help="Over the last N days."), currency: str = typer.Option(None),
    statuses: list[str] = typer.Option(list(REVENUE_STATUSES), "--status",
                                       help="payment_event metadata.status to count (repeatable); `any` = every status."),
    as_json: bool = typer.Option(False, "--json", help="The totals as JSON."),
) -> None:
    """Payment totals by protocol (a2a / acp / ap2 / x402 / traditional): by default the payments that went through
    (`processed`)."""
    until = datetime.now(UTC)
    wanted: list[str | None] = [None] if "any" in statuses else list(dict.fromkeys(statuses))

    async def totals(c: Events) -> list:
        return [await c.revenue(until - timedelta(days=days), until, status=s, currency=currency) for s in wanted]

    rows = merge_revenue(_run(org, totals))
    if as_json:
        print_json(rows)
        return
    print_table(["protocol", "currency", "total", "payments"],
                [(r["protocol"], r["currency"] or "-", r["total"], r["count"]) for r in rows], out=console,
                empty="no payments in that window with that status (see --status)")


@app.command()
def archive(
    older_than_days: float = typer.Option(None, help="Default: the configured hot window."),
    org: UUID = typer.Option(None, "--org", help="Only this org's events."),
    directory: Path = typer.Option(None, "--dir", help="Default: <data_dir>/archive/events."),
) -> None:
    """Move events older than the hot window into compressed, checksummed archive files."""
    settings = settings_of("eventlog", effective_settings())
    days = older_than_days if older_than_days is not None else settings.eventlog_hot_window_days
    with progress_bar() as bar:
        task = bar.add_task("archiving", total=None)
        result = asyncio.run(_retention().archive_events(
            settings, before=datetime.now(UTC) - timedelta(days=days), org_id=org, directory=directory,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        ))
    console.print(f"archived {result.archived} events into {len(result.files)} files")


@app.command("import")
def import_(directory: Path = typer.Argument(..., help="An archive directory (with manifest.json).")) -> None:
    """Re-import archived events (checksums verified first; events already present are skipped)."""
    with progress_bar() as bar:
        task = bar.add_task("importing", total=None)
        count = asyncio.run(_retention().import_archive(
            effective_settings(), directory, progress=lambda d, t: bar.update(task, completed=d, total=t),
        ))
    console.print(f"imported {count} events")


@app.command()
def replay(
    subject: str = typer.Option(..., "--subject", help="Where to re-publish, e.g. one.rebuild.search."),
    org: UUID | None = OrgOption,
    from_position: int = typer.Option(0, "--from"), to_position: int = typer.Option(None, "--to"),
    types: list[str] = typer.Option(None, "--type"),
) -> None:
    """Re-publish a range of an org's events, in position order, to rebuild a read model."""
    with progress_bar() as bar:
        task = bar.add_task("replaying", total=None)
        sent = _run(org, lambda c: c.replay(subject, from_position=from_position, to_position=to_position,
                                                   types=types or [],
                                                   progress=lambda d, t: bar.update(task, completed=d, total=t or None)))
    console.print(f"replayed {sent} events to {subject}")


@app.command("deadletters")
def dead_letters(
    org: UUID | None = OrgOption,
    after: int = typer.Option(0, help="Cursor: letters after this id."),
    limit: int = typer.Option(100),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Messages a consumer gave up on (the event log's ingest, or any service's), each with its reason."""
    page = _run(org, lambda c: c.dead_letters(after_id=after, limit=limit))
    if as_json:
        for letter in page.dead_letters:
            print(letter.model_dump_json())
        return
    print_table([Column("id"), Column("recorded"), Column("reason code"), Column("reason", "text"),
                 Column("subject", "text")],
                [[str(d.id), d.recorded_at.isoformat(timespec="seconds"), d.reason_code, d.reason, d.subject]
                 for d in page.dead_letters], out=console, empty="no dead letters")
    if page.dead_letters and len(page.dead_letters) == limit:
        console.print(f"next page: --after {page.dead_letters[-1].id}")
