"""`one packs list|install|uninstall`: the bundles an org adds to itself (thing types with property schemas,
roles with policies, field masks, prompts, agents).

`install NAME` installs a pack the platform ships; `install --file pack.json` a document of the org's own.
Installing again creates nothing twice; `uninstall` removes what nothing uses and lists what stayed and why.
Org owners only (`packs:manage`).
"""

from pathlib import Path
from typing import Any

import typer

from shared.tools.cli_commerce import JsonOption
from shared.tools.cli_output import EXIT_USAGE, Column, act, fail, json_object, print_json, print_table

packs_app = typer.Typer(help="Installable packs: thing types, roles, field masks, prompts and agents.",
                        no_args_is_help=True)
ITEM_COLUMNS = [Column("kind"), Column("name", "id"), Column("outcome"), Column("why", "text")]
OtpOption = typer.Option(None, "--otp", help="A current TOTP or backup code, when the org enables two-factor.")


def _items(reply: Any, as_json: bool) -> None:
    if as_json:
        print_json(reply)
        return
    print_table(ITEM_COLUMNS, [(i.kind, i.name, i.outcome, i.reason) for i in reply.items])


@packs_app.command("list")
def list_packs(as_json: bool = JsonOption) -> None:
    """The packs installed in the org, and those the platform ships."""
    from shared.contracts.tenancy.packs import PACK_LIST

    packs = act(lambda one: one.request(PACK_LIST, {}))
    if as_json:
        print_json(packs)
        return
    installed = {p.name: p for p in packs.installed}
    rows = [(p.name, p.version, "yes" if p.name in installed else "", p.title) for p in packs.available]
    rows += [(p.name, p.version, "yes", p.title) for p in packs.installed if p.name not in
             {a.name for a in packs.available}]
    print_table([Column("name", "id"), Column("version"), Column("installed"), Column("title", "text")], rows,
                empty="no packs")


@packs_app.command("install")
def install(
    name: str = typer.Argument(None, help="A shipped pack (see `one packs list`)."),
    file: Path = typer.Option(None, "--file", exists=True, dir_okay=False, help="A pack document (JSON) instead."),
    otp: str = OtpOption,
    as_json: bool = JsonOption,
) -> None:
    """Install a pack; what it brings is created once, however often it is installed."""
    from shared.contracts.tenancy.packs import PACK_INSTALL

    if (name is None) == (file is None):
        fail("give a pack's name or --file, not both", "e.g. `one packs install tutoring`", EXIT_USAGE)
    body: dict[str, Any] = {"name": name} if file is None else {"document": json_object(f"@{file}", "--file")}
    if otp:
        body["otp"] = otp
    _items(act(lambda one: one.request(PACK_INSTALL, body, timeout=60)), as_json)


@packs_app.command("uninstall")
def uninstall(name: str = typer.Argument(..., help="An installed pack."), otp: str = OtpOption,
              as_json: bool = JsonOption) -> None:
    """Uninstall a pack: what nothing uses goes; what stays (a role a member holds, ...) is listed with why."""
    from shared.contracts.tenancy.packs import PACK_UNINSTALL

    body = {"name": name, **({"otp": otp} if otp else {})}
    _items(act(lambda one: one.request(PACK_UNINSTALL, body, timeout=60)), as_json)
