"""Reading an elizaOS registry document: each entry validated into the manifest the platform keeps (pure, no I/O).

The document is the registry's `generated-registry.json` shape, `{"registry": {"<npm name>": entry}}` (a bare
`{"<npm name>": entry}` mapping is read the same way). An entry names its repository (`git.repo`, `owner/name` on
GitHub, or a `repository` URL) and its version (`npm.v1`, `git.v1.version` or `version`: semver, which `packaging`
must also read, since ranges are compared with it). What the platform can use of a plugin is in the entry's `one`
section: `runtime: "http"`, `dependencies` (name -> npm range `^1.2.0` / `~1.2` / `1.x` or a PEP 440 specifier),
`settings` (a JSON schema; `writeOnly` properties are secrets), `actions` (HTTP endpoints: `url` may name
settings as `{baseUrl}`, `parameters` is a JSON schema, `signWith` names the secret setting that signs the request)
and `prompts` (ELEVATE-step templates the org gets). An entry without one needs the elizaOS TypeScript runtime: it
is kept, searchable, and refused at install with that reason.
"""

import re
from typing import Any

import jsonschema
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from services.agents import plugins_gives
from shared.contracts.agents.plugins import PluginRegistryInvalid
from shared.contracts.agents.records import ElevateStep

_NAME = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_GIT_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_URL = re.compile(r"^https?://[^\s/]+\S*$")
_ACTION = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NPM_RANGE = re.compile(r"^(?P<op>\^|~|>=|<=|>|<|=)?\s*v?(?P<major>\d+|x|\*)(?:\.(?P<minor>\d+|x|\*))?"
                        r"(?:\.(?P<patch>\d+|x|\*))?(?P<pre>-[0-9A-Za-z.-]+)?$")
NOT_INSTALLABLE = "it needs the elizaOS TypeScript runtime, which the platform does not run"


def _invalid(entry: str, field: str, problem: str) -> PluginRegistryInvalid:
    return PluginRegistryInvalid(f"registry entry {entry!r}: {field} {problem}", {"entry": entry, "field": field})


def version_of(text: str) -> Version:
    """A semver version as `packaging` compares it (`1.0.0-beta.1` is 1.0.0b1)."""
    return Version(text)


def _npm_clause(clause: str) -> str:
    """One npm range clause as PEP 440 (`^1.2.3` -> `>=1.2.3,<2.0.0`); ValueError if it is neither."""
    match = _NPM_RANGE.match(clause.strip())
    if match is None:
        raise ValueError(clause)
    op, parts = match["op"], [match["major"], match["minor"], match["patch"]]
    wild = next((i for i, p in enumerate(parts) if p is None or p in ("x", "*")), 3)
    nums = [int(p) for p in parts[:wild]]
    base = ".".join(str(n) for n in nums + [0] * (3 - len(nums))) + (match["pre"] or "" if wild == 3 else "")
    if op in (">=", "<=", ">", "<"):
        return f"{op}{base}"
    if op == "^" and wild > 0:
        bump = next((i for i, n in enumerate(nums) if n != 0), len(nums) - 1)
        upper = nums[:bump] + [nums[bump] + 1]
        return f">={base},<{'.'.join(str(n) for n in upper + [0] * (3 - len(upper)))}"
    if op == "~" and wild > 0:
        upper = [nums[0], nums[1] + 1] if len(nums) > 1 else [nums[0] + 1]
        return f">={base},<{'.'.join(str(n) for n in upper + [0] * (3 - len(upper)))}"
    if wild == 0:
        return ">=0"
    if wild == 3:
        return f"=={base}"
    upper = nums[:-1] + [nums[-1] + 1]
    return f">={base},<{'.'.join(str(n) for n in upper + [0] * (3 - len(upper)))}"


def specifier_of(text: str) -> SpecifierSet:
    """A version range: a PEP 440 specifier set, else npm's syntax (`^`, `~`, `1.x`, `*`, space-joined clauses)."""
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        pass
    if "||" in text:
        raise ValueError("alternatives (`||`) are not supported")
    clauses = text.split() or ["*"]
    return SpecifierSet(",".join(_npm_clause(clause) for clause in clauses))


def _version(name: str, entry: dict[str, Any]) -> str:
    git, npm = entry.get("git") or {}, entry.get("npm") or {}
    candidates = [npm.get("v1"), (git.get("v1") or {}).get("version"), entry.get("version"), npm.get("v0"),
                  (git.get("v0") or {}).get("version")]
    version = next((v for v in candidates if v), None)
    if not isinstance(version, str):
        raise _invalid(name, "version", "is missing (npm.v1, git.v1.version or version)")
    version = version.lstrip("v")
    try:
        if not _SEMVER.match(version):
            raise InvalidVersion(version)
        version_of(version)
    except InvalidVersion:
        raise _invalid(name, "version", f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)") from None
    return version


def _repository(name: str, entry: dict[str, Any]) -> str:
    repo = (entry.get("git") or {}).get("repo")
    if isinstance(repo, str) and _GIT_REPO.match(repo.removeprefix("github:")):
        return f"https://github.com/{repo.removeprefix('github:')}"
    url = entry.get("repository")
    if isinstance(url, str) and _URL.match(url):
        return url
    raise _invalid(name, "repository", "is missing or not a GitHub `owner/name` (git.repo) or an http(s) URL")


def _schema(name: str, field: str, schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise _invalid(name, field, "is not a JSON schema object")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise _invalid(name, field, f"is not a valid JSON schema: {error.message}") from None
    return schema


def _dependencies(name: str, one: dict[str, Any]) -> dict[str, str]:
    deps = one.get("dependencies") or {}
    if not isinstance(deps, dict):
        raise _invalid(name, "one.dependencies", "is not an object of name -> version range")
    for dep, spec in deps.items():
        if not isinstance(dep, str) or not _NAME.match(dep) or dep == name:
            raise _invalid(name, f"one.dependencies.{dep}", "is not another plugin's npm name")
        try:
            specifier_of(str(spec))
        except (ValueError, InvalidSpecifier):
            raise _invalid(name, f"one.dependencies.{dep}", f"{spec!r} is not a version range") from None
    return {dep: str(spec) for dep, spec in deps.items()}


def _actions(name: str, one: dict[str, Any], settings: dict[str, Any], secrets: set[str]) -> list[dict[str, Any]]:
    actions, known = [], set(settings.get("properties") or {})
    for i, action in enumerate(one.get("actions") or []):
        field = f"one.actions[{i}]"
        if not isinstance(action, dict) or not _ACTION.match(str(action.get("name", ""))):
            raise _invalid(name, f"{field}.name", "is missing or not an identifier (letters, digits, _)")
        url = action.get("url")
        shape = url if not isinstance(url, str) else _PLACEHOLDER.sub(
            lambda m: "http://setting.test" if m.start() == 0 else "x", url)
        if not isinstance(shape, str) or not _URL.match(shape):
            raise _invalid(name, f"{field}.url", "is not an http(s) URL (settings may fill `{placeholders}`)")
        if set(_PLACEHOLDER.findall(url)) & secrets:
            raise _invalid(name, f"{field}.url", "names a secret setting: a secret may sign a request, not be in a URL")
        missing = sorted(set(_PLACEHOLDER.findall(url)) - known)
        if missing:
            raise _invalid(name, f"{field}.url", f"names settings the schema lacks: {', '.join(missing)}")
        sign_with = action.get("signWith")
        if sign_with is not None and sign_with not in known:
            raise _invalid(name, f"{field}.signWith", "names a setting the schema lacks")
        actions.append({"name": action["name"], "description": str(action.get("description", ""))[:1000],
                        "url": url, "signWith": sign_with, "timeout": float(action.get("timeout", 10.0)),
                        "parameters": _schema(name, f"{field}.parameters",
                                              action.get("parameters") or {"type": "object"})})
    if len({a["name"] for a in actions}) != len(actions):
        raise _invalid(name, "one.actions", "names an action twice")
    return actions


def _prompts(name: str, one: dict[str, Any]) -> list[dict[str, Any]]:
    prompts = []
    for i, prompt in enumerate(one.get("prompts") or []):
        field = f"one.prompts[{i}]"
        if not isinstance(prompt, dict) or not prompt.get("name") or not prompt.get("template"):
            raise _invalid(name, field, "needs a name and a template")
        if prompt.get("step", "foundation") not in set(ElevateStep):
            raise _invalid(name, f"{field}.step", f"is not an ELEVATE step ({', '.join(ElevateStep)})")
        prompts.append({"name": str(prompt["name"])[:200], "step": prompt.get("step", "foundation"),
                        "template": str(prompt["template"]), "description": str(prompt.get("description", ""))})
    return prompts


def manifest_of(name: str, entry: Any) -> dict[str, Any]:
    """The validated manifest of one registry entry; `PluginRegistryInvalid` naming the entry and field if not."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 214:
        raise _invalid(str(name), "name", "is not an npm package name (`@scope/plugin-name`)")
    if not isinstance(entry, dict):
        raise _invalid(name, "entry", "is not an object")
    one = entry.get("one")
    if one is not None and not isinstance(one, dict):
        raise _invalid(name, "one", "is not an object")
    one = one or {}
    runtime = one.get("runtime", "http" if one else "typescript")
    if runtime not in ("http", "typescript"):
        raise _invalid(name, "one.runtime", "is neither `http` nor `typescript`")
    settings = _schema(name, "one.settings", one.get("settings") or {"type": "object", "properties": {}})
    secrets = sorted(k for k, v in (settings.get("properties") or {}).items() if isinstance(v, dict)
                     and v.get("writeOnly"))
    description = entry.get("description") or one.get("description") or ""
    return {
        "name": name, "version": _version(name, entry), "repository": _repository(name, entry),
        "description": str(description)[:4000], "runtime": runtime,
        "reason": NOT_INSTALLABLE if runtime == "typescript" else None,
        "dependencies": _dependencies(name, one), "settings": settings, "secrets": secrets,
        "actions": _actions(name, one, settings, set(secrets)), "prompts": _prompts(name, one),
        "tags": [str(t)[:50] for t in (one.get("tags") or entry.get("tags") or [])][:20],
        "thing_types": plugins_gives.thing_types(name, one, _schema),
        "mcp_servers": plugins_gives.mcp_servers(name, one),
    }


def read_registry(document: Any) -> list[dict[str, Any]]:
    """Every entry's manifest, in name order; the whole document is refused for one bad entry."""
    if not isinstance(document, dict):
        raise PluginRegistryInvalid("the registry document is not a JSON object", {"entry": None, "field": None})
    entries = document.get("registry", document)
    if not isinstance(entries, dict) or not entries:
        raise PluginRegistryInvalid("the registry document has no plugins (`registry` is empty or not an object)",
                                    {"entry": None, "field": "registry"})
    if len(entries) > 2000:
        raise PluginRegistryInvalid("the registry document has more than 2000 plugins", {"entry": None,
                                                                                           "field": "registry"})
    return [manifest_of(name, entries[name]) for name in sorted(entries) if name != "lastUpdatedAt"]
