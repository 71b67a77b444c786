"""Hypothesis strategies for the bus: payloads drawn from a message's own JSON Schema, those payloads mutated,
and hostile JSON (wrong types, huge and deeply nested values, unicode edge cases, null bytes).

The schema walker covers what pydantic emits for our contracts (objects, arrays, scalars with their bounds,
`enum`/`const`, `anyOf`, local `$ref`s, the `uuid` and `date-time` formats, `pattern`); anything else draws
hostile JSON, which is just as good a question to ask a service.
"""

from datetime import UTC
from typing import Any

from hypothesis import strategies as st

EDGE_STRINGS = [
    "", " ", "\x00", "a\x00b", "\u202e", "\ufeff", "\U0001f600" * 50, "é" * 300, "\ud7ff", "𝕏" * 10,
    "\ud800", "../../etc/passwd", "'; drop table things; --", "%s%n", "{{7*7}}", "null", "NaN", "-0", "1e309",
]
"""Strings that have broken parsers, loggers, SQL and templates elsewhere."""

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EDGE_STRINGS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
)
hostile_json = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


extreme_values = st.sampled_from([
    "x" * 200_000,                 # a string far past every field's maxLength
    deep(300),                     # nesting past any sane parser's patience
    list(range(5_000)),            # a long array
    {f"k{i}": i for i in range(2_000)},  # a wide object
    2**200,                        # an integer no column holds
    -1, 0, 10**18,
])
hostile = st.one_of(hostile_json, extreme_values)


def from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None, depth: int = 0) -> st.SearchStrategy[Any]:
    """Valid-looking values for one JSON Schema node (pydantic's dialect)."""
    defs = schema.get("$defs", defs or {})
    if depth > 6:
        return st.none()
    if "$ref" in schema:
        return from_schema(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, defs, depth + 1) for s in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, defs, depth) for k in kind])
    if kind == "object" or "properties" in schema:
        return _object(schema, defs, depth)
    if kind == "array":
        items = from_schema(schema.get("items", {}), defs, depth + 1)
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3)))
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(min_value=_bound(schema, "minimum", "exclusiveMinimum", 1),
                           max_value=_bound(schema, "maximum", "exclusiveMaximum", -1))
    if kind == "number":
        return st.floats(min_value=schema.get("minimum"), max_value=schema.get("maximum"),
                         allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return hostile_json


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, step: int) -> int | None:
    if inclusive in schema:
        return int(schema[inclusive])
    if exclusive in schema:
        return int(schema[exclusive]) + step
    return None


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "uuid":
        return st.uuids().map(str)
    if fmt == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: low <= len(s) <= schema.get(
            "maxLength", 10**9))
    return st.text(min_size=low, max_size=max(low, high))


def _object(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    if not properties:
        extra = schema.get("additionalProperties")
        values = from_schema(extra, defs, depth + 1) if isinstance(extra, dict) else hostile_json
        return st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=3)
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {k: from_schema(v, defs, depth + 1) for k, v in properties.items() if k in required},
        optional={k: from_schema(v, defs, depth + 1) for k, v in properties.items() if k not in required},
    )


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A payload one step away from valid: a field's value made hostile, a field dropped, or one added."""
    payload = dict(draw(valid))
    how = draw(st.sampled_from(["replace", "drop", "add"] if payload else ["add"]))
    if how == "add":
        payload[draw(st.text(min_size=1, max_size=20))] = draw(hostile)
    else:
        key = draw(st.sampled_from(sorted(payload)))
        if how == "drop":
            del payload[key]
        else:
            payload[key] = draw(hostile)
    return payload


def payloads(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """What the fuzzer sends one message type: valid-looking, nearly valid, or any JSON object at all."""
    valid = from_schema(schema).filter(lambda v: isinstance(v, dict))
    return st.one_of(valid, mutated(valid), st.dictionaries(st.text(max_size=12), hostile, max_size=4))
