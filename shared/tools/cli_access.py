"""`one access masks|scopes list|set|remove`: the field masks and scope rules the graph enforces on reads.

A mask hides a property of a thing type from a role (`mask` shows `***`, `redact` leaves it out, `allow`
is an exception at a higher priority); a scope rule limits which things of a type a role sees (`own`,
`connected --via <connection type>`, `all`; `--deny` hides what it matches, and deny wins). Setting a rule
again changes nothing. Org owners only (`access_rules:update`); listing needs `access_rules:list`.
"""

from typing import Any

import typer

from shared.tools.cli_commerce import JsonOption
from shared.tools.cli_output import Column, act, print_json, print_reply

access_app = typer.Typer(help="Field masks and scope rules per role, enforced on every graph read.", no_args_is_help=True)
masks_app = typer.Typer(help="Field masks: what of a thing type a role does not see.", no_args_is_help=True)
scopes_app = typer.Typer(help="Scope rules: which things of a type a role sees.", no_args_is_help=True)
access_app.add_typer(masks_app, name="masks")
access_app.add_typer(scopes_app, name="scopes")
RoleOption = typer.Option(None, "--role", help="Only this role's rules.")
TypeOption = typer.Option(None, "--type", help="Only the rules of this thing type (`*`: those of every type).")


def _filter(role: str | None, thing_type: str | None) -> dict[str, str]:
    return {k: v for k, v in (("role", role), ("thing_type", thing_type)) if v is not None}


@masks_app.command("list")
def list_masks(role: str = RoleOption, thing_type: str = TypeOption, as_json: bool = JsonOption) -> None:
    """The org's field masks."""
    from shared.contracts.graph.access import MASK_LIST

    reply = act(lambda one: one.request(MASK_LIST, _filter(role, thing_type)))
    print_reply(reply, as_json, [Column("id", "id"), "role", "type", Column("field", "text"), "mode", "priority"],
                [(m.id, m.role, m.thing_type, m.field, m.mode, m.priority) for m in reply.masks], empty="no field masks")


@masks_app.command("set")
def set_mask(
    role: str = typer.Argument(..., help="The role the mask applies to, e.g. customer."),
    thing_type: str = typer.Argument(..., help="A thing type, or `*` for every type."),
    field: str = typer.Argument(..., help="properties.<key>[.<key>...]; a `*` segment matches any key."),
    mode: str = typer.Option("mask", "--mode", help="mask (shows ***), redact (left out) or allow (an exception)."),
    priority: int = typer.Option(0, "--priority", help="The highest priority decides; a tie goes to the stricter."),
    as_json: bool = JsonOption,
) -> None:
    """Set a field mask (again: nothing changes)."""
    from shared.contracts.graph.access import MASK_SET

    body = {"role": role, "thing_type": thing_type, "field": field, "mode": mode, "priority": priority}
    _show(act(lambda one: one.request(MASK_SET, body)), as_json)


@masks_app.command("remove")
def remove_mask(rule_id: str = typer.Argument(..., help="The mask's id (`one access masks list`).")) -> None:
    """Remove a field mask."""
    from shared.contracts.graph.access import MASK_REMOVE

    print(act(lambda one: one.request(MASK_REMOVE, {"id": rule_id})).id)


@scopes_app.command("list")
def list_scopes(role: str = RoleOption, thing_type: str = TypeOption, as_json: bool = JsonOption) -> None:
    """The org's scope rules."""
    from shared.contracts.graph.access import SCOPE_LIST

    reply = act(lambda one: one.request(SCOPE_LIST, _filter(role, thing_type)))
    print_reply(reply, as_json, [Column("id", "id"), "role", "type", "rule", "via", "effect"],
                [(r.id, r.role, r.thing_type, r.rule, r.connection_type or "", r.effect) for r in reply.rules],
                empty="no scope rules")


@scopes_app.command("set")
def set_scope(
    role: str = typer.Argument(..., help="The role the rule applies to, e.g. customer."),
    thing_type: str = typer.Argument(..., help="A thing type, or `*` for every type."),
    rule: str = typer.Argument(..., help="own, connected (with --via) or all."),
    via: str = typer.Option(None, "--via", help="For `connected`: the connection type to the actor's thing."),
    deny: bool = typer.Option(False, "--deny", help="Hide what the rule matches, whatever allows it."),
    as_json: bool = JsonOption,
) -> None:
    """Set a scope rule (again: nothing changes)."""
    from shared.contracts.graph.access import SCOPE_SET

    body = {"role": role, "thing_type": thing_type, "rule": rule, "connection_type": via,
            "effect": "deny" if deny else "allow"}
    _show(act(lambda one: one.request(SCOPE_SET, body)), as_json)


@scopes_app.command("remove")
def remove_scope(rule_id: str = typer.Argument(..., help="The rule's id (`one access scopes list`).")) -> None:
    """Remove a scope rule."""
    from shared.contracts.graph.access import SCOPE_REMOVE

    print(act(lambda one: one.request(SCOPE_REMOVE, {"id": rule_id})).id)


def _show(rule: Any, as_json: bool) -> None:
    if as_json:
        print_json(rule)
    else:
        print(rule.id)
