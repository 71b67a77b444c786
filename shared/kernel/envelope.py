"""The envelope every bus message travels in, and the registry of message types.

A message `type` maps to one `MessageSpec`: its subject, payload model, result
model, the protocols allowed to send it and whether it needs an auth context.
`decode_request` turns raw bytes into a checked (envelope, payload) pair or raises
the precise typed error; it never lets a validation exception escape. Envelopes the
platform makes in bulk (domain events) are written as JSON by an `EnvelopeWriter`,
without a model each.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import SchemaValidator, from_json, to_json
from typing_extensions import TypedDict

from shared.kernel.errors import (
    InvalidRequest,
    MalformedMessage,
    OneError,
    ProtocolMismatch,
    Unauthenticated,
    UnknownMessageType,
)
from shared.kernel.ids import uuid7

REPLY_RESULT = "result"
REPLY_ERROR = "error"


class Protocol(StrEnum):
    """Which protocol a message belongs to (the envelope's tag)."""

    NATIVE = "native"
    A2A = "a2a"
    ACP = "acp"
    AP2 = "ap2"
    X402 = "x402"
    AG_UI = "ag-ui"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One message on the bus; `org_id`/`actor_id` are stamped at the edge, never taken from payloads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: UUID = Field(default_factory=uuid7)
    protocol: Protocol = Protocol.NATIVE
    type: str = Field(min_length=1, max_length=200)
    org_id: UUID | None = None
    actor_id: UUID | None = None
    role: str | None = None
    permissions: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    payload: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return _ENVELOPE_JSON.to_json(self)  # `model_dump_json().encode()`, without the str in between


_ENVELOPE_JSON = Envelope.__pydantic_serializer__
_FIELDS = {name: TypeAdapter(field.rebuild_annotation(), config=Envelope.model_config)
           for name, field in Envelope.model_fields.items()}
"""Each field's type on its own, with the model's settings: it writes (and checks) a field as the model does."""


def payload_json(payload: dict[str, Any]) -> bytes:
    """A payload given as a dict, written as the model writes an envelope's (`EnvelopeWriter.write` takes it)."""
    return _FIELDS["payload"].serializer.to_json(payload)


_OWN_FIELDS = ("id", "type", "occurred_at", "payload")
"""What each envelope of an `EnvelopeWriter` writes itself, in the model's order; it shares the other fields."""
_DEFAULTS = {name: field.default for name, field in Envelope.model_fields.items() if name not in _OWN_FIELDS}
_KEYS = {name: to_json(name) + b":" for name in _FIELDS}
_DEFAULT_TEXTS = {
    name: _KEYS[name] + (_FIELDS[name].serializer.to_json(_DEFAULTS[name]) if name in _DEFAULTS else b"\0")
    for name in _FIELDS
}
"""`"name":value` of each shared field with its default, and a raw NUL (JSON text never holds one: it is
escaped) where an own field's value goes."""
_write_id, _write_time = _FIELDS["id"].serializer.to_json, _FIELDS["occurred_at"].serializer.to_json


@lru_cache(maxsize=1024)
def _type_json(type: str) -> bytes:
    """An envelope type's JSON, checked as the model checks it: once per type (they are the services' constants)."""
    return _FIELDS["type"].serializer.to_json(_FIELDS["type"].validate_python(type))


class EnvelopeWriter:
    """Writes the JSON of new envelopes that share all their fields but `_OWN_FIELDS` (the domain events that one
    piece of work stages), without an `Envelope` each.

    Validating what the kernel had just built, then serialising it field by field, was most of the ~10 µs an
    event cost to stage, and a batch create stages 500. An envelope's JSON is its fields' JSON in the model's
    order: the shared fields' are written once, here (the model's defaults for those not given), and an
    envelope adds only its type (checked and written once per type), its new id and time (as the model's
    defaults make them) and its payload, already JSON. The bytes are the model's own (`Envelope.to_bytes`),
    which a test checks over many random envelopes.
    """

    def __init__(self, **shared: Any) -> None:
        texts = _DEFAULT_TEXTS.copy()
        for name, value in shared.items():
            if name not in _DEFAULTS:
                raise TypeError(f"an envelope writer cannot share {name!r}")
            if value is not _DEFAULTS[name]:  # a default (None, mostly) is written already
                texts[name] = _KEYS[name] + _FIELDS[name].serializer.to_json(value)
        self._texts = (b"{" + b",".join(texts.values()) + b"}").split(b"\0")

    def write(self, type: str, payload: bytes) -> tuple[UUID, bytes]:
        """A new envelope's id and JSON: of `type`, made now, carrying `payload` (JSON already)."""
        texts, id = self._texts, uuid7()
        return id, b"".join((texts[0], _write_id(id), texts[1], _type_json(type), texts[2], _write_time(utcnow()),
                             texts[3], payload, texts[4]))


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is asking, for which organization; verified at the edge.

    `role`, `permissions` (encoded policies, see `shared.kernel.rbac`) and `scopes` (the
    API key's restriction; empty = unrestricted) come from `tenancy.key.verify`,
    so any service can enforce RBAC locally with `shared.kernel.rbac.require`.
    """

    org_id: UUID
    actor_id: UUID
    role: str | None = None
    permissions: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


class Payload(BaseModel):
    """Base for message payloads: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Empty(Payload):
    pass


P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class MessageSpec(Generic[P, R]):
    type: str
    subject: str
    payload: type[P]
    result: type[R]
    protocols: frozenset[Protocol] = field(default_factory=lambda: frozenset({Protocol.NATIVE}))
    requires_auth: bool = True
    permission: str | None = None
    """`resource:action` that every request of this type needs (the handler may check more): the gateway
    refuses a key whose scopes or role lack it before sending, and a rate rule's operation can name it."""


_REGISTRY: dict[str, MessageSpec[Any, Any]] = {}


def register_message(
    type: str,
    subject: str,
    payload: type[P],
    result: type[R],
    *,
    protocols: Iterable[Protocol] = (Protocol.NATIVE,),
    requires_auth: bool = True,
    permission: str | None = None,
) -> MessageSpec[P, R]:
    """Declare a message type once (in a service's `schemas.py`); clients and handlers share it."""
    spec = MessageSpec(type, subject, payload, result, frozenset(protocols), requires_auth, permission)
    existing = _REGISTRY.get(type)
    if existing is not None and existing != spec:
        raise ValueError(f"message type {type!r} is already registered differently")
    _REGISTRY[type] = spec
    return spec


def message_spec(type: str) -> MessageSpec[Any, Any]:
    try:
        return _REGISTRY[type]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {type!r}", {"type": type}) from None


def _validation_details(error: ValidationError) -> dict[str, Any]:
    """Pydantic errors without the offending input, so secrets are never echoed back."""
    return {"errors": error.errors(include_url=False, include_context=False, include_input=False)}


def decode_envelope(raw: bytes) -> Envelope:
    try:
        return _ENVELOPE.validate_json(raw)  # `Envelope.model_validate_json`, minus its Python wrapper
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise MalformedMessage("message is not valid JSON") from None
        raise MalformedMessage("message is not a valid envelope", _validation_details(error)) from None


_ENVELOPE = Envelope.__pydantic_validator__


def check_request(envelope: Envelope, specs: Mapping[str, MessageSpec[Any, Any]]) -> tuple[BaseModel, MessageSpec[Any, Any]]:
    """Check a request against the specs served at its subject, in the order a caller would fix it."""
    spec = specs.get(envelope.type)
    if spec is None:
        raise UnknownMessageType(
            f"message type {envelope.type!r} is not handled here", {"type": envelope.type, "accepted": sorted(specs)}
        )
    if envelope.protocol not in spec.protocols:
        raise ProtocolMismatch(
            f"{envelope.type!r} does not accept protocol {envelope.protocol.value!r}",
            {"protocol": envelope.protocol.value, "accepted": sorted(p.value for p in spec.protocols)},
        )
    if spec.requires_auth and (envelope.org_id is None or envelope.actor_id is None):
        raise Unauthenticated(f"{envelope.type!r} needs an auth context (org_id and actor_id)")
    try:
        payload = spec.payload.__pydantic_validator__.validate_python(envelope.payload)  # model_validate, minus its wrapper
    except ValidationError as error:
        raise InvalidRequest(f"invalid payload for {envelope.type!r}", _validation_details(error)) from None
    return payload, spec


def refuse_nul_characters(raw: bytes, payload: Any) -> None:
    """No text anywhere in the platform may hold U+0000: Postgres stores none (text nor jsonb), so a payload
    with one is refused here, by path, rather than failing deep in a query. JSON can only carry it escaped:
    the byte scan is the fast path, the walk runs only when the escape is there."""
    if b"\\u0000" not in raw:
        return
    stack: list[tuple[str, Any]] = [("payload", payload)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise InvalidRequest("text may not contain the NUL character (U+0000)", {"path": path})
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    raise InvalidRequest("a key may not contain the NUL character (U+0000)", {"path": path})
                stack.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))


@dataclass(frozen=True, slots=True)
class Encoded(Generic[R]):
    """A result whose JSON is already made, embedded in the reply as it is.

    `of(model)`: serialised once, for results a service keeps and returns many times
    (a cache entry). `plain(data)`: built straight from the service's own rows
    (dicts, UUIDs, datetimes) for a hot reply, skipping a model's validation and
    serialisation; the result model still checks it on the caller's side, and a
    test must check the shape against the model (no `model` is kept).
    """

    model: R
    json: bytes

    @classmethod
    def of(cls, model: R) -> "Encoded[R]":
        return cls(model, model.__pydantic_serializer__.to_json(model))

    @classmethod
    def plain(cls, data: dict[str, Any]) -> "Encoded[Any]":
        return cls(None, to_json(data))


def encode_reply(request: Envelope | None, result: BaseModel | Encoded[Any] | OneError) -> bytes:
    """A reply is an envelope too: type `result` or `error`, caused by the request."""
    is_error = isinstance(result, OneError)
    reply = {
        "id": uuid7(),
        "protocol": request.protocol.value if request else Protocol.NATIVE.value,  # serialising the member is slow
        "type": REPLY_ERROR if is_error else REPLY_RESULT,
        "org_id": request.org_id if request else None,
        "actor_id": request.actor_id if request else None,
        "correlation_id": (request.correlation_id or request.id) if request else None,
        "causation_id": request.id if request else None,
        "occurred_at": utcnow(),
    }
    if isinstance(result, Encoded):
        return to_json(reply)[:-1] + b',"payload":' + result.json + b"}"
    reply["payload"] = result.to_payload() if is_error else result
    return to_json(reply)


_RESULT_REPLIES: dict[type[BaseModel], SchemaValidator] = {}


def _result_reply(result: type[R]) -> SchemaValidator:
    """A validator for `{"type": "result", "payload": <result>}` (other envelope fields ignored), built once per model."""
    validator = _RESULT_REPLIES.get(result)
    if validator is None:
        shape = TypedDict(f"{result.__name__}Reply", {"type": Literal["result"], "payload": result})  # type: ignore[misc]
        validator = _RESULT_REPLIES[result] = TypeAdapter(shape).validator
    return validator


def decode_reply(raw: bytes, spec: MessageSpec[Any, R]) -> R:
    """The caller's side: the typed result, or the typed error raised again.

    Only the payload is validated (against the result model): the reply's own
    envelope fields come from our service and nothing here depends on them. A
    result is validated straight from the bytes, in one pass; anything else (an
    error, or a result that does not match) takes the path that says what it is.
    """
    try:
        return _result_reply(spec.result).validate_json(raw)["payload"]
    except ValidationError:
        pass
    try:
        reply = from_json(raw)
        kind, payload = reply["type"], reply["payload"]
    except (ValueError, TypeError, KeyError):
        raise MalformedMessage(f"reply to {spec.type!r} is not a reply envelope") from None
    if kind == REPLY_ERROR:
        raise OneError.from_payload(payload)
    if kind != REPLY_RESULT:
        raise MalformedMessage(f"expected a reply, got message type {kind!r}")
    try:
        return spec.result.model_validate(payload)
    except ValidationError as error:
        raise MalformedMessage(f"reply to {spec.type!r} does not match its result model", _validation_details(error)) from None
