"""ACP 2026-04-17's official JSON Schema bundle (`acp_spec/`, Apache-2.0, see its LICENSE), ready to validate.

The bundle wins where the OpenAPI files disagree with it (e.g. a request's `line_items` are `Item`s,
`{id, name?, unit_amount?}`, with no quantity). The gateway checks every ACP request and response with
it, commerce checks what reaches it over the bus, and the tests check what they read: one copy of the
rules. A refusal names the first offending field as an RFC 9535 JSONPath (`param`) and an ACP code:
`missing` (a required field), `unknown_field` (a field the schema does not allow) or `invalid`.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shared.kernel.errors import InvalidRequest

API_VERSION = "2026-04-17"
SUPPORTED_VERSIONS = (API_VERSION,)
"""The `API-Version`s this merchant speaks, newest first."""

BUNDLE = Path(__file__).resolve().parent / "acp_spec" / "schema.agentic_checkout.json"


class AcpSchemaViolation(InvalidRequest):
    """A body that does not match the ACP schema: `details.param` (JSONPath), `details.acp_code`, `details.schema`."""

    code = "acp_schema_violation"


@cache
def _bundle() -> dict[str, Any]:
    return json.loads(BUNDLE.read_text())


@cache
def validator(definition: str) -> Draft202012Validator:
    """A validator for one `$defs` entry of the bundle (`CheckoutSession`, `CheckoutSessionCreateRequest`, ...)."""
    bundle = _bundle()
    if definition not in bundle["$defs"]:
        raise KeyError(f"no {definition!r} in the ACP schema bundle")
    registry: Registry = Registry().with_resource(bundle["$id"], Resource.from_contents(bundle, DRAFT202012))
    schema = {"$schema": bundle["$schema"], "$ref": f"{bundle['$id']}#/$defs/{definition}"}
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: ValidationError) -> tuple[str, str, str]:
    """(param, acp_code, message) of the most specific error."""
    while error.context:  # oneOf/anyOf: the branch that got furthest says most
        error = max(error.context, key=lambda e: len(e.absolute_path))
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            return _json_path([*path, extra[0]]), "unknown_field", f"unknown field {extra[0]!r}"
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            return _json_path([*path, missing[0]]), "missing", f"{missing[0]!r} is required"
    return _json_path(path), "invalid", error.message[:300]


def errors(definition: str, instance: Any) -> list[tuple[str, str, str]]:
    """Every problem with `instance` as (param, acp_code, message); empty when it is valid."""
    found = sorted(validator(definition).iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path))))
    return [_describe(e) for e in found]


def check(definition: str, instance: Any) -> None:
    """Raise `AcpSchemaViolation` (naming the first problem) unless `instance` is a valid `definition`."""
    problems = errors(definition, instance)
    if problems:
        param, acp_code, message = problems[0]
        raise AcpSchemaViolation(f"{definition}: {param}: {message}",
                                 {"param": param, "acp_code": acp_code, "schema": definition})
