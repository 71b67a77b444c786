"""`one publish` and `one events tail|query|history|revenue|archive|import|replay`.

Bus commands act as the owner of the API key (`ONE_API_KEY`, or the credentials
file `one up` wrote), verified by tenancy; or, with `--org` / `--actor`, as a
trusted internal client. `archive` and `import` run the retention job over the
owner database connection.
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
from rich.table import Table

from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.ontology import Role
from shared.kernel.rbac import role_permissions
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.tools.credentials import load_api_key
from shared.tools.events_client import EventsClient
from shared.tools.keys import authenticate
from shared.tools.stack import effective_settings, service_module, settings_of

app = typer.Typer(help="The event log: query, tail, analytics, archive, replay.", no_args_is_help=True)
console = Console()
T = TypeVar("T")
NO_ACTOR = UUID(int=0)

OrgOption = typer.Option(None, "--org", help="Organization id (trusted internal use); default: the API key's org.")
ActorOption = typer.Option(NO_ACTOR, "--actor", help="Acting thing's id.")


def running_settings() -> Settings:
    settings = effective_settings()
    if not settings.nats_url:
        console.print("[red]nothing is running[/red]: start it with `make run` (or set NATS_URL)")
        raise typer.Exit(1)
    return settings


def _run(
    org: UUID | None, actor: UUID, work: Callable[[EventsClient], Awaitable[T]], protocol: Protocol = Protocol.NATIVE
) -> T:
    """Act for `--org` as its owner, a trusted internal client, or else as the API key's owner (verified)."""
    settings = running_settings()
    key = None if org is not None else load_api_key(settings)
    if org is None and key is None:
        console.print("[red]no --org and no API key[/red]: pass --org, set ONE_API_KEY, or run `make run` once")
        raise typer.Exit(1)

    async def main() -> T:
        async with await BusClient.connect(settings, name="one-events") as bus:
            ctx = trusted_context(org, actor) if org is not None else await authenticate(bus, key)
            return await work(EventsClient(bus, ctx, protocol=protocol))

    return asyncio.run(main())


def trusted_context(org: UUID, actor: UUID) -> AuthContext:
    """`--org`: act as the org's owner without a key, as a trusted internal client (the bus user is the trust)."""
    return AuthContext(org, actor, Role.ORG_OWNER, role_permissions(Role.ORG_OWNER))


def _retention() -> ModuleType:
    """The event log's retention job: it runs here, over the owner's database connection, not over the bus."""
    return service_module("eventlog", "retention")


def api_key_or_exit(settings: Settings) -> str:
    """The CLI's API key (`ONE_API_KEY` or the credentials file), or a clear exit."""
    key = load_api_key(settings)
    if key is None:
        console.print("[red]no API key[/red]: set ONE_API_KEY, or run `make run` once to create the credentials file")
        raise typer.Exit(1)
    return key


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console)


def _json_arg(value: str | None) -> dict[str, Any]:
    """Inline JSON, or `@file.json`."""
    if not value:
        return {}
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise typer.BadParameter("metadata must be a JSON object")
    return parsed


def _filters(types: list[str] | None, actor_id: UUID | None, target: UUID | None, thing: UUID | None,
             protocols: list[str] | None, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    return {
        "types": types or [], "actor_id": actor_id, "target_id": target, "thing_id": thing, "protocols": protocols or [],
        "since": since.replace(tzinfo=since.tzinfo or UTC) if since else None,
        "until": until.replace(tzinfo=until.tzinfo or UTC) if until else None,
    }


def _print_events(events: list, as_json: bool) -> None:
    if as_json:
        for e in events:
            print(e.model_dump_json())
        return
    table = Table("position", "occurred_at", "type", "protocol", "actor", "target", "metadata")
    for e in events:
        table.add_row(str(e.position), e.occurred_at.isoformat(timespec="seconds"), e.type, e.protocol,
                      str(e.actor_id or "")[:13], str(e.target_id or "")[:13], json.dumps(e.metadata)[:60])
    console.print(table)


def publish(
    type: str = typer.Option(None, "--type", help="Event type (canonical or granular); omit with --stdin."),
    org: UUID | None = OrgOption,
    actor: UUID = ActorOption,
    protocol: Protocol = typer.Option(Protocol.NATIVE, "--protocol"),
    meta: str = typer.Option(None, "--meta", help="Metadata: JSON or @file.json."),
    target: UUID = typer.Option(None, "--target"),
    target_type: str = typer.Option(None, "--target-type"),
    stdin: bool = typer.Option(False, "--stdin", help="Read many events as JSON lines from stdin."),
) -> None:
    """Publish one event (or many, one JSON object per stdin line) to the event log."""
    if stdin:
        items = [json.loads(line) for line in sys.stdin if line.strip()]
        with progress_bar() as bar:
            task = bar.add_task("publishing", total=len(items))
            appended = _run(org, actor, lambda c: c.publish_many(items, progress=lambda d, t: bar.update(task, completed=d)),
                            protocol)
        duplicates = sum(a.duplicate for a in appended)
        console.print(f"published {len(appended)} events ({duplicates} duplicates)")
        return
    if not type:
        raise typer.BadParameter("--type is required unless --stdin")
    result = _run(org, actor, lambda c: c.publish(type, target_id=target, target_type=target_type, metadata=_json_arg(meta)),
                  protocol)
    print(result.model_dump_json())


@app.command()
def query(
    org: UUID | None = OrgOption,
    actor: UUID = ActorOption,
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
    page = _run(org, actor, lambda c: c.query(**filters, after=after, order="desc" if desc else "asc", limit=limit))
    _print_events(page.events, as_json)
    if page.next_cursor is not None and not as_json:
        console.print(f"next page: --after {page.next_cursor}" if not desc else f"next cursor: {page.next_cursor}")


@app.command()
def tail(
    org: UUID | None = OrgOption,
    actor: UUID = ActorOption,
    types: list[str] = typer.Option(None, "--type"),
    by: UUID = typer.Option(None, "--by"),
    target: UUID = typer.Option(None, "--target"),
    protocols: list[str] = typer.Option(None, "--protocol"),
    after: int = typer.Option(0, help="Start after this position (0 = from the beginning of the hot log)."),
) -> None:
    """Follow an org's new events as JSON lines; Ctrl-C prints the position to resume from."""
    filters = _filters(types, by, target, None, protocols, None, None)

    async def follow(client: EventsClient) -> None:
        try:
            async for event in client.tail(after=after, **filters):
                print(event.model_dump_json(), flush=True)
        finally:
            console.print(f"resume with --after {client.cursor}", style="dim")

    try:
        _run(org, actor, follow)
    except KeyboardInterrupt:
        pass


@app.command()
def revenue(
    org: UUID | None = OrgOption, actor: UUID = ActorOption,
    days: float = typer.Option(30.0, help="Over the last N days."), currency: str = typer.Option(None),
) -> None:
    """Payment totals by protocol (a2a / acp / ap2 / x402 / traditional)."""
    until = datetime.now(UTC)
    result = _run(org, actor, lambda c: c.revenue(until - timedelta(days=days), until, currency=currency))
    table = Table("protocol", "currency", "total", "payments")
    for row in result.totals:
        table.add_row(row.protocol, row.currency or "-", str(row.total), str(row.count))
    console.print(table)


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
    org: UUID | None = OrgOption, actor: UUID = ActorOption,
    from_position: int = typer.Option(0, "--from"), to_position: int = typer.Option(None, "--to"),
    types: list[str] = typer.Option(None, "--type"),
) -> None:
    """Re-publish a range of an org's events, in position order, to rebuild a read model."""
    with progress_bar() as bar:
        task = bar.add_task("replaying", total=None)
        sent = _run(org, actor, lambda c: c.replay(subject, from_position=from_position, to_position=to_position,
                                                   types=types or [],
                                                   progress=lambda d, t: bar.update(task, completed=d, total=t or None)))
    console.print(f"replayed {sent} events to {subject}")
