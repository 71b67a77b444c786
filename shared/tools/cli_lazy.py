"""Command groups imported only when they are run, so `one whoami` does not pay for `one knowledge ...`.

`one` names each group by `"module:attribute"` (a `typer.Typer` or a command function); the module is
imported the first time click asks for that command (running it, its `--help`, shell completion).
`one --help` lists every group, so it imports them all; any single command imports only its own.
"""

import importlib
import importlib.util
import sys
import types
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


def skip_pydantic_plugin_discovery() -> None:
    """Let pydantic find no plugins in this process, without looking for them.

    Pydantic looks for plugins (the `pydantic` entry point group) when it builds its first validator: that
    imports `importlib.metadata` and reads every installed distribution's entry points, about a fifth of a
    one-request command's start (issue 18). The CLI uses no pydantic plugin. Only `one`'s own process is
    affected (not the services `one up` starts, not a process that loaded pydantic's finder already).
    """
    finder = types.ModuleType("pydantic.plugin._loader")
    finder.get_plugins = tuple  # what pydantic's own returns with PYDANTIC_DISABLE_PLUGINS set: no plugins
    sys.modules.setdefault(finder.__name__, finder)


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in `sys.modules` for a module until one of its attributes is read; then imports the module (in
    its place) and forwards to it. `import name` costs nothing in code that only holds the name."""

    def __getattr__(self, attribute: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


def import_on_first_use(name: str) -> None:
    """`import name` gives a stand-in until the module is used (`_ImportedOnFirstUse`), if it is installed and not
    loaded yet.

    For aiohttp: nats-py imports it when it is installed (x402's and web3's dependencies install it), for its
    websocket transport only, and importing it cost a quarter of a second at every CLI command that uses the bus.
    """
    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        sys.modules[name] = _ImportedOnFirstUse(name)
