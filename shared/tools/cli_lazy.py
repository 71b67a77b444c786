"""Command groups imported only when they are run, so `one whoami` does not pay for `one knowledge ...`.

`one` names each group by `"module:attribute"` (a `typer.Typer` or a command function); the module is
imported the first time click asks for that command (running it, its `--help`, shell completion).
`one --help` lists every group, so it imports them all; any single command imports only its own.
"""

import importlib
from typing import Any

import typer
from typer import _click as click  # typer's own click, which its commands are made of
from typer.core import TyperGroup


def _as_click(target: Any, name: str) -> click.Command:
    if not isinstance(target, typer.Typer):  # a command function
        single = typer.Typer()
        single.command(name=name)(target)
        target = single
    target._add_completion = False  # the root `one` offers completion for every command
    command = typer.main.get_command(target)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root group: its own commands, plus `lazy` ones (name -> "module:attribute") loaded on first use."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(_as_click(getattr(importlib.import_module(module), attribute), cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


def lazy_group(commands: dict[str, str]) -> type[LazyGroup]:
    """A `LazyGroup` class for `typer.Typer(cls=...)` with these lazy commands."""
    return type("OneGroup", (LazyGroup,), {"lazy": dict(commands)})
