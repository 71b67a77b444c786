"""`one things ...` and `one connections ...`: the graph from a terminal, through the SDK.

Every command acts as a verified key (`One.connect()`: the running stack's bus, or `ONE_URL` over the
gateway). Create from flags, or from a JSON object (`--json-body '{...}'` or `@file.json`) with the
contract's fields; lists and gets print a table that fits 80 columns, or the reply with `--json`.
"""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_output import Column, act, fail, json_object, print_json, print_record, print_reply, print_table

things_app = typer.Typer(help="Things: create, get, query, update, archive, delete, restore, neighbours.",
                         no_args_is_help=True)
connections_app = typer.Typer(help="Connections between things: create, list, update, end, delete.",
                              no_args_is_help=True)
graph_app = typer.Typer(help="The graph's own upkeep: mirror tenancy's identity (orgs, people, memberships).",
                        no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
BodyOption = typer.Option(None, "--json-body", help="The request's fields as JSON (or @file.json); flags win.")
THING_COLUMNS = [Column("id", "id"), Column("type"), Column("status"), Column("name", "text")]
CONNECTION_COLUMNS = [Column("id", "id"), Column("type"), Column("from", "id"), Column("to", "id"),
                      Column("metadata", "text")]
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists")


def _body(body: str | None, **flags: Any) -> dict[str, Any]:
    """`--json-body` merged with the flags that were given (a flag left unset does not override)."""
    return {**json_object(body, "--json-body"), **{k: v for k, v in flags.items() if v is not None}}


def show_thing(thing: Any, as_json: bool) -> None:
    if as_json:
        print_json(thing)
        return
    print_record({"id": str(thing.id), "type": thing.type, "name": thing.name, "status": thing.status,
                  "version": str(thing.version), "properties": thing.properties,
                  "updated_at": thing.updated_at.isoformat(timespec="seconds")})


def show_things(things: list[Any], next_cursor: Any = None) -> None:
    print_table(THING_COLUMNS, [(t.id, t.type, t.status, t.name) for t in things], empty="no things match")
    if next_cursor:
        print(f"next page: --cursor {next_cursor}")


def show_connections(connections: list[Any]) -> None:
    print_table(CONNECTION_COLUMNS, [(c.id, c.type, c.from_id, c.to_id, _compact(c.metadata) if c.metadata else "")
                                     for c in connections], empty="no connections")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def where_clause(text: str) -> dict[str, Any]:
    """`path=value` or `path:op:value` -> a property filter; the value is JSON when it parses (10, true), else text."""
    head, equals, tail = text.partition("=")
    if equals and ":" not in head:
        path, op, value = head, "eq", tail
    else:
        path, _, rest = text.partition(":")
        op, _, value = rest.partition(":")
    if not path or op not in OPERATORS:
        fail(f"--where {text!r}: expected path=value or path:op:value, op one of {', '.join(OPERATORS)}",
             "e.g. --where price:gt:10 or --where currency=USD", 2)
    if op == "exists":
        return {"path": path, "op": op}
    try:
        return {"path": path, "op": op, "value": json.loads(value)}
    except json.JSONDecodeError:
        return {"path": path, "op": op, "value": value}


# --- things -----------------------------------------------------------------


@things_app.command("create")
def thing_create(
    type: str = typer.Argument(None, help="The thing type (e.g. blog_post, course, creator); or give --json-body."),
    name: str = typer.Argument(None, help="Its name."),
    properties: str = typer.Option(None, "--properties", "-p", help="Properties as a JSON object (or @file.json)."),
    status: str = typer.Option(None, help="draft (default), active, published, archived."),
    idempotency_key: str = typer.Option(None, "--idempotency-key", help="A retry with the same key creates nothing."),
    body: str = BodyOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a thing from flags, or from a JSON object with the contract's fields (`--json-body`)."""
    payload = _body(body, type=type, name=name, status=status, idempotency_key=idempotency_key,
                    properties=json_object(properties, "--properties") if properties else None)
    if "type" not in payload or "name" not in payload:
        fail("a thing needs a type and a name", "one things create <type> <name>, or --json-body '{...}'", 2)
    from shared.contracts.graph import THING_CREATE

    show_thing(act(lambda one: one.request(THING_CREATE, payload)), as_json)


@things_app.command("get")
def thing_get(
    id: UUID,
    include: list[str] = typer.Option(None, "--include", help="Also the things connected by this type (repeatable)."),
    as_json: bool = JsonOption,
) -> None:
    """A thing, and with --include the things its connections of those types lead to."""
    found = act(lambda one: one.things.get(id, include=include or None))
    if as_json:
        print_json(found)
        return
    show_thing(found.thing, False)
    if found.related:
        print()
        print_table([Column("connection"), Column("thing", "id"), Column("type"), Column("name", "text")],
                    [(r.connection.type, r.thing.id, r.thing.type, r.thing.name) for r in found.related])


@things_app.command("query")
def thing_query(
    type: str = typer.Option(None, "--type", help="Only this thing type."),
    status: str = typer.Option(None, help="Only this status."),
    text: str = typer.Option(None, help="Names containing this text."),
    where: list[str] = typer.Option(None, "--where", help="path=value or path:op:value (op: eq ne gt gte lt lte "
                                                          "contains exists); repeatable."),
    include_deleted: bool = typer.Option(False, "--include-deleted"),
    cursor: UUID = typer.Option(None, help="The next page, as the last page printed it."),
    limit: int = typer.Option(100, min=1, max=1000),
    as_json: bool = JsonOption,
) -> None:
    """Things of the organization, filtered by type, status, name and property values."""
    clauses = [where_clause(w) for w in where or []]
    page = act(lambda one: one.things.query(type=type, status=status, text=text, where=clauses or None,
                                            include_deleted=include_deleted or None, cursor=cursor, limit=limit))
    if as_json:
        print_json(page)
    else:
        show_things(page.things, page.next_cursor)


@things_app.command("update")
def thing_update(
    id: UUID,
    name: str = typer.Option(None),
    properties: str = typer.Option(None, "--properties", "-p", help="Merged into the stored ones; null removes a key."),
    status: str = typer.Option(None),
    expected_version: int = typer.Option(None, "--expected-version", help="Refuse if the thing changed since."),
    body: str = BodyOption,
    as_json: bool = JsonOption,
) -> None:
    """Change a thing's name, properties or status."""
    payload = _body(body, name=name, status=status, expected_version=expected_version,
                    properties=json_object(properties, "--properties") if properties else None)
    if not payload:
        fail("nothing to change", "give --name, --properties, --status or --json-body", 2)
    from shared.contracts.graph import THING_UPDATE

    show_thing(act(lambda one: one.request(THING_UPDATE, {**payload, "id": str(id)})), as_json)


def _lifecycle(verb: str, help_text: str) -> None:
    def command(id: UUID, as_json: bool = JsonOption) -> None:
        show_thing(act(lambda one: getattr(one.things, verb)(id)), as_json)

    command.__doc__ = help_text
    things_app.command(verb)(command)


_lifecycle("archive", "Archive a thing (status archived; it stays readable).")
_lifecycle("delete", "Delete a thing (soft: its connections are hidden too; `restore` brings both back).")
_lifecycle("restore", "Bring a deleted thing back.")


@things_app.command("neighbours")
def neighbours(
    id: UUID,
    depth: int = typer.Option(1, min=1, max=6),
    direction: str = typer.Option("out", help="out, in or both."),
    types: list[str] = typer.Option(None, "--type", help="Only along these connection types (repeatable)."),
    as_of: datetime = typer.Option(None, "--as-of", help="Only connections valid at that instant."),
    limit: int = typer.Option(1000, min=1, max=1000),
    as_json: bool = JsonOption,
) -> None:
    """The things reachable from a thing within `depth` hops, with the fewest hops each took."""
    found = act(lambda one: one.things.neighbors(id, depth=depth, direction=direction, types=types or None,
                                                 as_of=as_of, limit=limit))
    print_reply(found, as_json,
                [Column("depth"), Column("id", "id"), Column("type"), Column("name", "text")],
                [(n.depth, n.thing.id, n.thing.type, n.thing.name) for n in found.neighbors], empty="no neighbours")


things_app.command("neighbors", hidden=True)(neighbours)


# --- connections --------------------------------------------------------------


def show_connection(connection: Any, as_json: bool) -> None:
    if as_json:
        print_json(connection)
        return
    print_record({"id": str(connection.id), "type": connection.type, "from": str(connection.from_id),
                  "to": str(connection.to_id), "metadata": connection.metadata, "strength": connection.strength,
                  "valid": f"{connection.valid_from.isoformat(timespec='seconds')} .. "
                           f"{connection.valid_to.isoformat(timespec='seconds') if connection.valid_to else ''}"})


@connections_app.command("create")
def connection_create(
    from_id: UUID = typer.Argument(None, help="The thing it starts from."),
    to_id: UUID = typer.Argument(None, help="The thing it leads to."),
    type: str = typer.Argument(None, help="The connection type (e.g. owns, follows, enrolled_in)."),
    metadata: str = typer.Option(None, "--metadata", "-m", help="Metadata as a JSON object (or @file.json)."),
    strength: float = typer.Option(None, min=0, max=1),
    valid_from: datetime = typer.Option(None, "--valid-from"),
    valid_to: datetime = typer.Option(None, "--valid-to"),
    body: str = BodyOption,
    as_json: bool = JsonOption,
) -> None:
    """Connect two things, from flags or from a JSON object with the contract's fields (`--json-body`)."""
    payload = _body(body, from_id=from_id and str(from_id), to_id=to_id and str(to_id), type=type, strength=strength,
                    valid_from=valid_from and valid_from.isoformat(), valid_to=valid_to and valid_to.isoformat(),
                    metadata=json_object(metadata, "--metadata") if metadata else None)
    if not {"from_id", "to_id", "type"} <= payload.keys():
        fail("a connection needs from, to and type", "one connections create <from id> <to id> <type>", 2)
    from shared.contracts.graph import CONNECTION_CREATE

    show_connection(act(lambda one: one.request(CONNECTION_CREATE, payload)), as_json)


@connections_app.command("list")
def connection_list(
    thing: UUID = typer.Argument(..., help="The thing whose connections to list."),
    direction: str = typer.Option("both", help="out, in or both."),
    types: list[str] = typer.Option(None, "--type", help="Only these types (repeatable)."),
    as_of: datetime = typer.Option(None, "--as-of", help="Only connections valid at that instant."),
    cursor: UUID = typer.Option(None),
    limit: int = typer.Option(100, min=1, max=1000),
    as_json: bool = JsonOption,
) -> None:
    """A thing's connections, outgoing, incoming or both."""
    page = act(lambda one: one.connections.query(thing, direction=direction, types=types or None, as_of=as_of,
                                                 cursor=cursor, limit=limit))
    if as_json:
        print_json(page)
        return
    show_connections(page.connections)
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")


@connections_app.command("update")
def connection_update(
    id: UUID,
    metadata: str = typer.Option(None, "--metadata", "-m", help="Merged into the stored metadata; null removes a key."),
    strength: float = typer.Option(None, min=0, max=1),
    as_json: bool = JsonOption,
) -> None:
    """Change a connection's metadata or strength."""
    if metadata is None and strength is None:
        fail("nothing to change", "give --metadata or --strength", 2)
    meta = json_object(metadata, "--metadata") if metadata else None
    show_connection(act(lambda one: one.connections.update(id, metadata=meta, strength=strength)), as_json)


@connections_app.command("end")
def connection_end(
    id: UUID,
    valid_to: datetime = typer.Option(None, "--valid-to", help="When it ended; default now."),
    as_json: bool = JsonOption,
) -> None:
    """End a connection's validity (history keeps it; `--as-of` queries still see it)."""
    show_connection(act(lambda one: one.connections.end(id, valid_to=valid_to)), as_json)


@connections_app.command("delete")
def connection_delete(id: UUID, as_json: bool = JsonOption) -> None:
    """Delete a connection."""
    deleted = act(lambda one: one.connections.delete(id))
    print_json(deleted) if as_json else print(f"deleted connection {deleted.id}")


@graph_app.callback()
def graph_group() -> None:
    """The graph's own upkeep (a group, so its one command keeps its name)."""


@graph_app.command("backfill-identity")
def backfill_identity(
    all_organizations: bool = typer.Option(False, "--all", help="Every organization (platform owners only)."),
    as_json: bool = JsonOption,
) -> None:
    """Mirror existing orgs, people and memberships as things and `member_of` connections (idempotent)."""
    from shared.contracts.graph import IDENTITY_BACKFILL

    synced = act(lambda one: one.request(IDENTITY_BACKFILL, {"all_organizations": all_organizations}, timeout=300))
    if as_json:
        print_json(synced)
        return
    print_record({name: str(value) for name, value in synced.model_dump().items()})
