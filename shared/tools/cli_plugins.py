"""`one plugins ...`: the platform's plugin registry and the org's installs of it (issue #25, seed 004).

Registry: `list`, `show NAME`, `search TEXT`, and `import` (platform owners: `--sample`, `--url URL` or
`--file registry.json`, a document in the elizaOS registry's format). Installs: `install NAME [--version RANGE]`
(its dependencies come along), `installed`, `status NAME`, `configure NAME key=value ...` (a secret setting is
given like any other and never shown again), `activate`, `deactivate`, `update`, `uninstall`, and
`run NAME ACTION key=value ...` to call one of its actions.
"""

import json
from pathlib import Path
from typing import Any

import typer

from shared.tools.cli_commerce import JsonOption
from shared.tools.cli_output import EXIT_USAGE, Column, act, fail, print_json, print_table

plugins_app = typer.Typer(help="Plugins: the registry, and the org's installs (tools, prompts) of it.",
                          no_args_is_help=True)
PLUGIN_COLUMNS = [Column("name", "id"), Column("version"), Column("runtime"), Column("description", "text")]
INSTALL_COLUMNS = [Column("plugin", "id"), Column("version"), Column("status"), Column("needed by", "text"),
                   Column("secrets set"), Column("failures")]


def _plugins(plugins: list[Any]) -> None:
    print_table(PLUGIN_COLUMNS, [(p.name, p.version, p.runtime if p.installable else f"{p.runtime} (not installable)",
                                  p.description) for p in plugins], empty="no plugins")


def _installs(installs: list[Any]) -> None:
    print_table(INSTALL_COLUMNS, [(i.plugin, i.version, i.status + (f": {i.suspended_reason}" if i.suspended_reason
                                                                        else ""),
                                   ", ".join(i.dependency_of), ", ".join(i.secrets_set), i.consecutive_failures)
                                  for i in installs], empty="no plugins installed")


def _values(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that reads as JSON (`3`, `true`, `null`, `["a"]`) is taken as such."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            fail(f"{pair!r} is not key=value", "e.g. `baseUrl=https://api.example.com`", EXIT_USAGE)
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    return values


def _show(reply: Any, as_json: bool, table: Any) -> None:
    if as_json:
        print_json(reply)
    else:
        table()


@plugins_app.command("import")
def import_registry(sample: bool = typer.Option(False, "--sample", help="The registry the platform ships."),
                    url: str = typer.Option(None, "--url", help="A registry document to fetch."),
                    file: Path = typer.Option(None, "--file", exists=True, dir_okay=False,
                                              help="A registry document (JSON)."),
                    as_json: bool = JsonOption) -> None:
    """Import a registry document (platform owners); importing the same one again changes nothing."""
    from shared.contracts.agents.plugins import PLUGIN_IMPORT

    if sum([sample, url is not None, file is not None]) != 1:
        fail("give one of --sample, --url, --file", "e.g. `one plugins import --sample`", EXIT_USAGE)
    body: dict[str, Any] = {"sample": True} if sample else {"url": url} if url else {"registry": _document(file)}
    reply = act(lambda one: one.request(PLUGIN_IMPORT, body, timeout=600))
    _show(reply, as_json, lambda: print_table([Column("plugin", "id"), Column("outcome")], [
        *((n, "created") for n in reply.created), *((n, "updated") for n in reply.updated),
        *((n, "unchanged") for n in reply.unchanged)]))


def _document(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except ValueError as error:
        fail(f"{file} is not JSON: {error}", "a registry document is one JSON object", EXIT_USAGE)


@plugins_app.command("list")
def list_plugins(text: str = typer.Option(None, "--name", help="Only names containing this."),
                 as_json: bool = JsonOption) -> None:
    """The registry's plugins."""
    from shared.contracts.agents.plugins import PLUGIN_LIST

    reply = act(lambda one: one.request(PLUGIN_LIST, {"text": text, "limit": 200}))
    _show(reply, as_json, lambda: _plugins(reply.plugins))


@plugins_app.command("search")
def search(query: str = typer.Argument(..., help="What the plugin should do, in words."), k: int = 5,
           as_json: bool = JsonOption) -> None:
    """Registry plugins ranked by meaning."""
    from shared.contracts.agents.plugins import PLUGIN_SEARCH

    reply = act(lambda one: one.request(PLUGIN_SEARCH, {"query": query, "k": k}, timeout=60))
    _show(reply, as_json, lambda: _plugins([hit.plugin for hit in reply.hits]))


@plugins_app.command("show")
def show(name: str) -> None:
    """A registry plugin as JSON: version, dependencies, settings schema, actions, prompts."""
    from shared.contracts.agents.plugins import PLUGIN_GET

    print_json(act(lambda one: one.request(PLUGIN_GET, {"name": name})))


@plugins_app.command("install")
def install(name: str, version: str = typer.Option(None, "--version", help="A range it must satisfy (^1.2)."),
            as_json: bool = JsonOption) -> None:
    """Install a plugin in the org, with the plugins it depends on."""
    from shared.contracts.agents.plugins import PLUGIN_INSTALL

    reply = act(lambda one: one.request(PLUGIN_INSTALL, {"name": name, "version": version}, timeout=60))
    _show(reply, as_json, lambda: _installs([*reply.dependencies_installed, reply.install]))


@plugins_app.command("installed")
def installed(as_json: bool = JsonOption) -> None:
    """The org's installed plugins."""
    from shared.contracts.agents.plugins import PLUGIN_INSTALLED

    reply = act(lambda one: one.request(PLUGIN_INSTALLED, {}))
    _show(reply, as_json, lambda: _installs(reply.installs))


def _one_install(spec_name: str, name: str, as_json: bool, body: dict[str, Any] | None = None) -> None:
    from shared.contracts.agents import plugins

    spec = getattr(plugins, spec_name)
    reply = act(lambda one: one.request(spec, {"name": name, **(body or {})}, timeout=60))
    _show(reply, as_json, lambda: _installs([reply]))


@plugins_app.command("status")
def status(name: str, as_json: bool = JsonOption) -> None:
    """One install: status, settings set, failure streak."""
    _one_install("PLUGIN_INSTANCE", name, as_json)


@plugins_app.command("configure")
def configure(name: str, settings: list[str] = typer.Argument(..., help="key=value (key= null removes it)."),
              as_json: bool = JsonOption) -> None:
    """Set an install's settings (checked against the plugin's schema; secrets are sealed, never shown)."""
    _one_install("PLUGIN_CONFIGURE", name, as_json, {"settings": _values(settings)})


@plugins_app.command("activate")
def activate(name: str, as_json: bool = JsonOption) -> None:
    """Activate an install (and the plugins it needs); a suspended one starts a new failure streak."""
    _one_install("PLUGIN_ACTIVATE", name, as_json)


@plugins_app.command("deactivate")
def deactivate(name: str, as_json: bool = JsonOption) -> None:
    """Deactivate an install: its actions stop running."""
    _one_install("PLUGIN_DEACTIVATE", name, as_json)


@plugins_app.command("update")
def update(name: str, as_json: bool = JsonOption) -> None:
    """Move an install to the registry's version (the plugins that need it must admit it)."""
    _one_install("PLUGIN_UPDATE", name, as_json)


@plugins_app.command("uninstall")
def uninstall(name: str, as_json: bool = JsonOption) -> None:
    """Uninstall a plugin nothing installed needs; its prompts are archived."""
    from shared.contracts.agents.plugins import PLUGIN_UNINSTALL

    reply = act(lambda one: one.request(PLUGIN_UNINSTALL, {"name": name}))
    _show(reply, as_json, lambda: print(f"uninstalled {reply.plugin} ({reply.id})"))


@plugins_app.command("run")
def run(name: str, action: str, arguments: list[str] = typer.Argument(None, help="key=value arguments."),
        as_json: bool = JsonOption) -> None:
    """Call one of an active plugin's actions; its answer is printed as JSON."""
    from shared.contracts.agents.plugins import PLUGIN_EXECUTE

    body = {"name": name, "action": action, "arguments": _values(arguments or [])}
    print_json(act(lambda one: one.request(PLUGIN_EXECUTE, body, timeout=60)).result)
