"""The CLI's conventions, in one place: how a command connects, prints a result, a table, an error, reads JSON.

For every command module (status, events, knowledge, things, orgs, jobs, ...): connect with
`act(lambda one: ...)` (the SDK, a verified key; `anonymous_request` for a token-is-the-proof message),
render lists with `print_table(columns, rows)` (ids never cut at 80 columns; rows that cannot fit become
a detail view) and gets with `print_record`, print `--json` with `print_json(result)`, read JSON options
with `json_object(value, "--meta")`, and let errors propagate: `run(app)` turns them into one line with
the code and the fix, and an exit code (`EXIT_CODES`, documented in docs/cli.md).

- `--json` prints the reply as its contract defines it (the same body the HTTP API returns): stable.
- This module imports nothing heavy at import time: every command loads it.
"""

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and the answer is "no": not healthy, nothing running, a job failed
EXIT_USAGE = 2  # bad options or bad input (click's own code for usage errors)
EXIT_UNAUTHENTICATED = 3
EXIT_FORBIDDEN = 4
EXIT_NOT_FOUND = 5
EXIT_INVALID = 6
EXIT_CONFLICT = 7
EXIT_LIMITED = 8  # quota exceeded or rate limited
EXIT_UNAVAILABLE = 9  # nothing answered in time: the stack is down or a service is stuck
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the command ran and the answer is no (unhealthy, nothing running, a job failed, internal error)",
    EXIT_USAGE: "bad options or bad input (e.g. invalid JSON in --meta)",
    EXIT_UNAUTHENTICATED: "no API key, or the key is not valid",
    EXIT_FORBIDDEN: "the key's role does not allow this",
    EXIT_NOT_FOUND: "no such thing, org, member, key, ...",
    EXIT_INVALID: "the service refused the request as invalid",
    EXIT_CONFLICT: "the state does not allow it (changed meanwhile, last owner, data directory in use, ...)",
    EXIT_LIMITED: "a quota or rate limit was reached",
    EXIT_UNAVAILABLE: "nothing answered in time (stack down, service stuck: raise --timeout or check `one status`)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

_BY_FAMILY: dict[str, tuple[int, str]] = {
    "unauthenticated": (EXIT_UNAUTHENTICATED, "check ONE_API_KEY or the credentials file `one up` wrote"),
    "forbidden": (EXIT_FORBIDDEN, "the key's role does not allow this: use an owner's key (`one roles list`)"),
    "not_found": (EXIT_NOT_FOUND, "check the id (list them with the matching `one ... list|query` command)"),
    "invalid": (EXIT_INVALID, "fix the input: `--help` on the command shows each option"),
    "conflict": (EXIT_CONFLICT, "the current state does not allow it: read it again, then retry"),
    "quota_exceeded": (EXIT_LIMITED, "raise the limit (`one quotas set`) or wait for the period to reset"),
    "rate_limited": (EXIT_LIMITED, "slow down, or raise the rule (`one rate-limits set`)"),
    "unavailable": (EXIT_UNAVAILABLE, "is the stack running (`one status`)? a slow service may need more --timeout"),
    "internal": (EXIT_FAILED, "a service failed: its log is in <data dir>/logs (`one up`) or the container's output"),
}


_BY_CODE: dict[str, tuple[int, str]] = {
    "no_credentials": (EXIT_UNAUTHENTICATED, "set ONE_API_KEY, or start the stack once with `one up` (it saves a key)"),
    "no_http_route": (EXIT_INVALID, "this command needs the bus: run it where the stack runs (unset ONE_URL)"),
}
"""Codes whose exit code or fix differs from their family's."""


class CliError(Exception):
    """A failure the CLI explains itself: one line, a fix, an exit code."""

    def __init__(self, message: str, fix: str = "", exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message, self.fix, self.exit_code = message, fix, exit_code


def fail(message: str, fix: str = "", exit_code: int = EXIT_FAILED) -> NoReturn:
    raise CliError(message, fix, exit_code)


def _stderr_line(text: str) -> None:
    print(" ".join(text.split()), file=sys.stderr)


def explain(error: BaseException) -> tuple[str, int]:
    """One line (the code, what happened, the fix) and the exit code for an error a command let through."""
    from shared.kernel.errors import OneError

    if isinstance(error, CliError):
        return f"error: {error.message}" + (f" -- {error.fix}" if error.fix else ""), error.exit_code
    if isinstance(error, OneError):
        exit_code, fix = _BY_CODE.get(error.code) or _BY_FAMILY.get(error.family(), (EXIT_FAILED, ""))
        return f"{error.code}: {error.message} -- {fix}", exit_code
    if _is_validation_error(error):
        first = error.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first.get("loc", ())) or "input"
        return f"invalid: {where}: {first.get('msg')} -- fix the input: `--help` shows each option", EXIT_INVALID
    if isinstance(error, TimeoutError):
        return f"unavailable: no answer in time -- {_BY_FAMILY['unavailable'][1]}", EXIT_UNAVAILABLE
    if isinstance(error, OSError) or _is_connection_error(error):
        reason = " ".join(str(error).split())[:200]
        return (f"unavailable: cannot reach the platform ({type(error).__name__}: {reason}) -- "
                f"{_BY_FAMILY['unavailable'][1]}"), EXIT_UNAVAILABLE
    raise error


def _is_connection_error(error: BaseException) -> bool:
    """NATS, HTTP and database client errors that mean "could not talk to it" (not a bug of the CLI)."""
    module, name = type(error).__module__, type(error).__name__
    return (module.startswith(("nats", "httpx", "httpcore")) or (module == "sqlalchemy.exc" and name in (
        "OperationalError", "InterfaceError")) or isinstance(error.__cause__, OSError))


def _is_validation_error(error: BaseException) -> bool:
    return type(error).__name__ == "ValidationError" and hasattr(error, "errors")


def run(app: Any) -> NoReturn:
    """Run the typer app; a usage error or whatever a command lets through becomes one line on stderr and a
    documented exit code."""
    import typer
    from typer._click import exceptions  # typer's own click: what its commands raise

    try:
        code = typer.main.get_command(app).main(standalone_mode=False)
    except exceptions.NoArgsIsHelpError as error:  # `one things`: the group's help, as click prints it
        error.show()
        sys.exit(error.exit_code)
    except exceptions.UsageError as error:
        where = f" -- see `{error.ctx.command_path} --help`" if error.ctx else ""
        _stderr_line(f"usage: {error.format_message()}{where}")
        sys.exit(EXIT_USAGE)
    except exceptions.ClickException as error:
        _stderr_line(f"error: {error.format_message()}")
        sys.exit(error.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # noqa: BLE001 (explain() re-raises what it does not know: a bug shows its traceback)
        line, exit_code = explain(error)
        _stderr_line(line)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def act(work: Callable[[Any], Any], *, org: Any = None) -> Any:
    """Connect with the SDK (`One.connect()`: the bus of the running stack, or `ONE_URL` over HTTP, always as a
    verified key), run `await work(one)`, close, and return its result."""
    import asyncio

    from shared.tools.sdk import One

    async def main() -> Any:
        async with await One.connect(org=org, name="one-cli") as one:
            return await work(one)

    return asyncio.run(main())


def anonymous_request(spec: Any, payload: dict[str, Any]) -> Any:
    """A message that needs no key (the token in it is the proof: verify an email, accept an invitation), over
    the running stack's bus."""
    import asyncio

    from shared.runtime.client import BusClient
    from shared.tools.stack import effective_settings

    settings = effective_settings()
    if not settings.nats_url:
        fail("nothing is running", "start it with `make run` (or set NATS_URL)")

    async def main() -> Any:
        async with await BusClient.connect(settings, name="one-cli") as bus:
            return await bus.request(spec, payload)

    return asyncio.run(main())


# --- input ------------------------------------------------------------------


def json_value(value: str, option: str) -> Any:
    """Inline JSON or `@file.json`; bad JSON is one line naming the option and the place, exit 2."""
    try:
        text = Path(value[1:]).read_text() if value.startswith("@") else value
    except OSError as error:
        fail(f"{option}: cannot read {value[1:]}: {error.strerror}", "give an existing file after @", EXIT_USAGE)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{option} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
             """quote it for the shell, e.g. --meta '{"amount": 5}', or pass @file.json""", EXIT_USAGE)


def json_object(value: str | None, option: str) -> dict[str, Any]:
    """A JSON object option (`--meta`, `--properties`, `--json-body`): `{}` when unset."""
    if not value:
        return {}
    parsed = json_value(value, option)
    if not isinstance(parsed, dict):
        fail(f"{option} must be a JSON object, got {type(parsed).__name__}", "wrap it in {...}", EXIT_USAGE)
    return parsed


def json_lines(lines: Iterable[str], source: str = "stdin") -> list[Any]:
    """JSON objects, one per non-empty line; a bad line is named by its number."""
    parsed = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as error:
            fail(f"{source} line {number} is not valid JSON: {error.msg}", "one JSON object per line", EXIT_USAGE)
    return parsed


# --- output -----------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """`--json`: one JSON document on stdout (a pydantic reply as its contract dumps it)."""
    print(json.dumps(_jsonable(value), indent=2, default=str))


def print_reply(reply: Any, as_json: bool, columns: Sequence["Column | str"], rows: Iterable[Sequence[Any]], *,
                empty: str = "") -> None:
    """A list command's output: the reply as JSON with `--json`, else its rows as a table."""
    if as_json:
        print_json(reply)
    else:
        print_table(columns, rows, empty=empty)


def print_record(fields: dict[str, Any], out: Any = None) -> None:
    """One object as `name  value` lines (a get's detail view): values wrap, nothing is cut."""
    cells = [["" if v is None else v if isinstance(v, str) else json.dumps(_jsonable(v), default=str)
              for v in fields.values()]]
    _print_details([Column(name) for name in fields], cells, out or console())


@dataclass(frozen=True)
class Column:
    """A table column. `kind`: `id` (never cut, never wrapped), `short` (kept whole), `text` (wraps)."""

    name: str
    kind: str = "short"


def ids(*names: str) -> list[Column]:
    return [Column(n, "id") for n in names]


def console(width: int | None = None) -> Any:
    from rich.console import Console

    return Console(width=width, highlight=False, soft_wrap=False)


class ConsoleOnFirstUse:
    """A module's `console()`, made when something is first printed with it: a command that prints a plain line
    (`one whoami`) does not import rich (~50 ms)."""

    def __init__(self, width: int | None = None) -> None:
        self._width, self._console = width, None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = console(self._width)
        return getattr(self._console, name)


def print_table(columns: Sequence[Column | str], rows: Iterable[Sequence[Any]], *, width: int | None = None,
                empty: str = "", out: Any = None) -> None:
    """Rows as a table that fits the terminal (80 columns and up) with every id whole; when the ids and short
    fields alone cannot fit, each row is printed as a detail view (`name  value` lines) instead. Columns empty
    in every row are left out; `empty` is printed when there are no rows."""
    from rich import box
    from rich.table import Table

    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    out = out or console(width)
    if not cells:
        if empty:
            out.print(empty, style="dim")
        return
    kept = [i for i in range(len(cols)) if any(row[i] for row in cells)]  # a column empty in every row is left out
    cols, cells = [cols[i] for i in kept], [[row[i] for i in kept] for row in cells]
    fixed = [max([len(c.name)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    needed = sum(w for w, c in zip(fixed, cols, strict=True) if c.kind != "text")
    needed += sum(min(w, 12) for w, c in zip(fixed, cols, strict=True) if c.kind == "text")
    needed += 2 * (len(cols) - 1)
    if needed > out.width:
        _print_details(cols, cells, out)
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False, expand=False)
    for column, w in zip(cols, fixed, strict=True):
        if column.kind == "text":
            table.add_column(column.name, overflow="fold", ratio=1)
        else:
            table.add_column(column.name, no_wrap=True, min_width=w)
    for row in cells:
        table.add_row(*row)
    out.print(table)


def _print_details(cols: Sequence[Column], cells: list[list[str]], out: Any) -> None:
    from rich.table import Table

    for n, row in enumerate(cells):
        if n:
            out.print()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for column, value in zip(cols, row, strict=True):
            grid.add_row(column.name, value)
        out.print(grid)
