"""AP2 v2's official JSON Schemas (`schemas/`, copied from the spec, Apache-2.0, see its LICENSE), ready to validate.

Every mandate commerce issues or accepts and every receipt it signs is checked against them. The
schemas' `$ref`s are relative ("types/merchant.json"); each file is registered under the URI its
referrers resolve to (some files' own `$id`s disagree with their file names).
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DIR = Path(__file__).resolve().parent / "schemas"
BASE = "https://ap2-protocol.org/schemas/"
OPEN_PAYMENT = "open_payment_mandate.json"
OPEN_CHECKOUT = "open_checkout_mandate.json"
PAYMENT = "payment_mandate.json"
CHECKOUT = "checkout_mandate.json"
PAYMENT_RECEIPT = "payment_receipt.json"
CHECKOUT_RECEIPT = "checkout_receipt.json"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(DIR.rglob("*.json")):
        contents = json.loads(path.read_text())
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        resources.append((BASE + path.relative_to(DIR).as_posix(), resource))
        resources.append((contents["$id"], resource))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((DIR / name).read_text())
    schema = {**schema, "$id": BASE + name}  # resolve its relative $refs from where the file sits
    return Draft202012Validator(schema, registry=_registry())


def _constraint_defs(schema: dict[str, Any]) -> dict[str, str] | None:
    """{constraint type: its $defs name} when every alternative of `constraints.items` is a $def fixing `type` to a
    const it requires (then at most one alternative can match an item: oneOf/anyOf = "the one named by its type")."""
    if "constraints" not in schema.get("properties", {}) or "$defs" not in schema:
        return None
    items = schema["properties"]["constraints"].get("items", {})
    alternatives = items.get("oneOf") or items.get("anyOf") or []
    found = {}
    for alternative in alternatives:
        ref = alternative.get("$ref", "")
        definition = schema["$defs"].get(ref.removeprefix("#/$defs/")) if ref.startswith("#/$defs/") else None
        const = ((definition or {}).get("properties", {}).get("type") or {}).get("const")
        if definition is None or const is None or "type" not in definition.get("required", []):
            return None
        found[const] = ref.removeprefix("#/$defs/")
    return found


@cache
def _by_type(name: str) -> tuple[Draft202012Validator, dict[str, Draft202012Validator], str] | None:
    """(the schema without its constraints' alternatives, a validator per constraint type, the type `contains`
    requires), for an open mandate's schema; None when its shape does not allow the shortcut."""
    schema = json.loads((DIR / name).read_text())
    defs = _constraint_defs(schema)
    if defs is None:
        return None
    contains = schema["properties"]["constraints"].get("contains", {}).get("$ref", "").removeprefix("#/$defs/")
    if contains not in defs.values():
        return None
    shell = {**schema, "$id": BASE + name, "properties": {**schema["properties"], "constraints": {"type": "array"}}}
    each = {const: Draft202012Validator({"$id": BASE + name, "$defs": schema["$defs"], "$ref": f"#/$defs/{def_}"},
                                        registry=_registry()) for const, def_ in defs.items()}
    required = schema["$defs"][contains]["properties"]["type"]["const"]
    return Draft202012Validator(shell, registry=_registry()), each, required


def valid(name: str, instance: Any) -> bool:
    """Whether `instance` is valid against the schema `name`: what `errors` says, faster for an open mandate (its
    constraints checked each against the one alternative its `type` names, not against every alternative)."""
    shortcut = _by_type(name)
    if shortcut is None or not isinstance(instance, dict) or not isinstance(instance.get("constraints"), list):
        return validator(name).is_valid(instance)
    shell, each, required = shortcut
    rules = instance["constraints"]
    return (shell.is_valid(instance) and any(isinstance(r, dict) and r.get("type") == required for r in rules)
            and all(isinstance(r, dict) and r.get("type") in each and each[r["type"]].is_valid(r) for r in rules))


def errors(name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the schema `name`, as `path: message` (empty = valid)."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]
