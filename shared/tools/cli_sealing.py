"""`one keys rotate`: rotate the keys that seal secrets at rest (envelope encryption), platform owner only.

Asks each service that seals (`shared.contracts.keys.SEALING_SERVICES`, or `--service`) to make a new
key-encryption key current and re-wrap its data keys under it while it keeps serving; `--data-keys` also retires
the orgs' current data keys (new writes get new ones, old values still open); `--retire KEK` forgets an old KEK
once nothing is wrapped under it — the command lists which ones are (docs/sealing.md).
"""

from typing import Any

import typer

from shared.tools.cli_output import Column, act, print_json, print_table


def rotate(
    service: list[str] = typer.Option(None, "--service", help="graph, tenancy, commerce or agents (repeatable; default: all)."),
    kek: bool = typer.Option(True, "--kek/--no-kek", help="Make a new key-encryption key current and re-wrap."),
    data_keys: bool = typer.Option(False, "--data-keys", help="Also retire the orgs' current data keys."),
    org: list[str] = typer.Option(None, "--org-id", help="Only these orgs' data keys (with --data-keys)."),
    retire: list[str] = typer.Option(None, "--retire", help="A KEK id to forget (refused while it wraps a key)."),
    as_json: bool = typer.Option(False, "--json", help="The replies as JSON (the contract's model)."),
) -> None:
    """Rotate the keys that seal secrets at rest (platform owner)."""
    from shared.contracts.keys import SEALING_SERVICES, keys_rotate_spec

    targets = service or list(SEALING_SERVICES)
    payload: dict[str, Any] = {"kek": kek, "data_keys": data_keys, "retire": retire or []}
    if org:
        payload["orgs"] = org

    async def work(one: Any) -> list[Any]:
        return [await one.request(keys_rotate_spec(name), payload) for name in targets]

    replies = act(work)
    if as_json:
        print_json(replies)
        return
    print_table([Column("service"), Column("current KEK"), Column("re-wrapped"), Column("data keys rotated"),
                 Column("retired"), Column("retirable")],
                [(r.service, r.current_kek, r.rewrapped, r.data_keys_rotated, " ".join(r.retired) or "-",
                  " ".join(r.retirable) or "-") for r in replies])
    for reply in replies:
        if reply.retirable:
            print(f"{reply.service}: no data key uses {', '.join(reply.retirable)} any more: "
                  f"retire with `one keys rotate --no-kek --service {reply.service} --retire <id>`")
