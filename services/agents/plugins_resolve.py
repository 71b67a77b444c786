"""Resolving a plugin's dependencies: the plugins to install, deepest first, or the cycle / conflict, by path.

Pure: it is given the registry's manifests (the closure of the plugin's dependencies) and the org's installed
versions. The registry holds one version of each plugin; an installed plugin keeps its version. Every range on
the way must admit the version there is (installed, else the registry's); the first one that does not is refused
with the path that led to it (`a -> b -> c`), as is a dependency that leads back to a plugin on its own path.
"""

from collections.abc import Callable
from typing import Any

from services.agents.plugins_registry import specifier_of, version_of
from shared.contracts.agents.plugins import (
    PluginDependencyCycle,
    PluginNotFound,
    PluginNotInstallable,
    PluginVersionConflict,
)


def _path(names: list[str]) -> str:
    return " -> ".join(names)


def resolve(root: str, wanted: str | None, manifests: dict[str, dict[str, Any]],
            installed: dict[str, str]) -> list[str]:
    """The plugins to install for `root` (within the range `wanted`), dependencies first; those installed already
    are left out."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, spec: str | None, path: list[str]) -> None:
        here = [*path, name]
        if name in path:
            cycle = here[path.index(name):]
            raise PluginDependencyCycle(f"the dependencies form a cycle: {_path(cycle)}",
                                        {"path": _path(here), "cycle": cycle})
        manifest = manifests.get(name)
        if manifest is None:
            raise PluginNotFound(f"no plugin {name} in the registry" + (f" (needed by {_path(path)})" if path else ""),
                                 {"plugin": name, "path": _path(here)})
        version = installed.get(name, manifest["version"])
        if spec is not None and not specifier_of(spec).contains(version_of(version), prereleases=True):
            where = "installed" if name in installed else "in the registry"
            raise PluginVersionConflict(
                f"{_path(here)}: {path[-1] if path else 'the request'} needs {name} {spec}, but {version} is {where}",
                {"path": _path(here), "plugin": name, "range": spec, "version": version,
                 "installed": name in installed})
        if name in seen:
            return
        seen.add(name)
        if manifest["runtime"] != "http":
            raise PluginNotInstallable(f"{name} cannot be installed: {manifest['reason']}"
                                       + (f" (needed by {_path(path)})" if path else ""),
                                       {"plugin": name, "path": _path(here), "runtime": manifest["runtime"]})
        for dep, dep_spec in sorted(manifest["dependencies"].items()):
            visit(dep, dep_spec, here)
        if name not in installed:
            order.append(name)

    visit(root, wanted, [])
    return order


async def closure(root: str, fetch: Callable[[list[str]], Any]) -> dict[str, dict[str, Any]]:
    """The manifests of `root` and everything it needs, read level by level (`fetch(names)` -> {name: manifest})."""
    manifests: dict[str, dict[str, Any]] = {}
    frontier = [root]
    while frontier:
        found = await fetch(frontier)
        manifests.update(found)
        frontier = sorted({dep for m in found.values() for dep in m["dependencies"]} - set(manifests))
        frontier = [name for name in frontier if name not in manifests]
        if len(manifests) > 500:
            break
    return manifests
