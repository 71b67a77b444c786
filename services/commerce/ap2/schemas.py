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


def errors(name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the schema `name`, as `path: message` (empty = valid)."""
    found = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]
