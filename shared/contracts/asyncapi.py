"""The bus as an AsyncAPI 3.0 document, generated from the contracts' registered messages.

Every module under `shared.contracts` is imported, and every `MessageSpec` it holds becomes an
operation the platform receives on its request subject (`one.<service>.<verb>`, a NATS queue
group per service), with a reply (its result, or the error reply) on the requester's inbox. The
domain events are one channel, `one.events.<protocol>.<org_id>.<event_type>`. Message payloads
are the envelopes, with the pydantic models' JSON schemas for their `payload`, so the document is
the contracts themselves and cannot drift from them. It lives here, beside the contracts, so the
gateway (`/asyncapi.json`) and the tools (`one asyncapi`) build the same one without a layer
breaking: it imports pydantic and the kernel only.
"""

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import shared.contracts
from shared import __version__
from shared.kernel import errors, subjects
from shared.kernel.envelope import REPLY_ERROR, REPLY_RESULT, Envelope, MessageSpec, Protocol
from shared.kernel.events import EventPayload
from shared.kernel.ontology import EventType

ASYNCAPI_VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"
NATS_BINDING_VERSION = "0.1.0"
HEADERS = {
    "type": "object",
    "properties": {
        "traceparent": {"type": "string", "description": "W3C trace context: the trace continues in the handler."},
        "tracestate": {"type": "string"},
        "Nats-Msg-Id": {"type": "string", "description": "The envelope id (JetStream drops a duplicate publish)."},
    },
}


def contract_modules() -> Iterator[ModuleType]:
    """Every module of `shared.contracts` (but this one), imported: each registers its messages on import."""
    for info in pkgutil.walk_packages(shared.contracts.__path__, f"{shared.contracts.__name__}."):
        if info.name != __name__:
            yield importlib.import_module(info.name)


def contract_messages() -> list[MessageSpec[Any, Any]]:
    """The message specs the contracts declare, by type."""
    found: dict[str, MessageSpec[Any, Any]] = {}
    for module in contract_modules():
        for value in vars(module).values():
            if isinstance(value, MessageSpec):
                found[value.type] = value
    return [found[t] for t in sorted(found)]


def error_codes() -> list[str]:
    """The stable error codes the kernel and the contracts define (a service may refine one further)."""
    return sorted({error.code for error in _all_errors()})


def asyncapi_document() -> dict[str, Any]:
    """The whole document (JSON-ready); its schemas are shared in `components.schemas`, named as pydantic does."""
    specs = contract_messages()
    models: dict[tuple[type[BaseModel], str], None] = {(EventPayload, "validation"): None,
                                                       (Envelope, "validation"): None}
    for spec in specs:
        models[(spec.payload, "validation")] = None
        models[(spec.result, "serialization")] = None
    refs, definitions = models_json_schema(list(models), ref_template=SCHEMAS + "{model}")
    schemas = dict(definitions.get("$defs", {}))
    schemas["ErrorPayload"] = _error_schema()

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return refs[(model, mode)]  # type: ignore[index]

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    error = _message("error", "An error reply", _reply(REPLY_ERROR, SCHEMAS + "ErrorPayload"))
    messages: dict[str, Any] = {"error": error}
    for spec in specs:
        request, result = f"{spec.type}.request", f"{spec.type}.result"
        payload, reply = ref(spec.payload, "validation"), ref(spec.result, "serialization")["$ref"]
        messages[request] = _message(spec.type, f"Request: `{spec.type}`", _envelope(spec.type, payload))
        messages[result] = _message("result", f"Result: `{spec.type}`", _reply(REPLY_RESULT, reply))
        channels[spec.type] = {
            "address": spec.subject,
            "messages": {"request": {"$ref": f"#/components/messages/{request}"}},
        }
        channels[f"{spec.type}.reply"] = {
            "address": None,
            "description": "The requester's inbox (the NATS reply subject).",
            "messages": {"result": {"$ref": f"#/components/messages/{result}"},
                         "error": {"$ref": "#/components/messages/error"}},
        }
        operations[spec.type] = _operation(spec)
    channels["domain_events"] = _events_channel()
    messages["event"] = _message("event", "A domain event", _envelope(None, ref(EventPayload, "validation")))
    operations["domain_events.publish"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/domain_events"},
        "messages": [{"$ref": "#/channels/domain_events/messages/event"}],
        "summary": "Services publish domain events (JetStream stream ONE_EVENTS, through each service's outbox).",
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "ONE on a bus",
            "version": __version__,
            "description": "The platform's NATS subjects and messages. Every message is an envelope (`Envelope`); "
            "who and for which org come from it, never from the payload. A request is answered by one reply "
            "envelope: `type` `result` with the result model, or `error` with a stable `code`.",
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "localhost:4222", "protocol": "nats",
                             "description": "The bus (NATS with JetStream); `NATS_URL` says where."}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _operation(spec: MessageSpec[Any, Any]) -> dict[str, Any]:
    service = spec.subject.split(".")[1]
    operation: dict[str, Any] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{spec.type}"},
        "messages": [{"$ref": f"#/channels/{spec.type}/messages/request"}],
        "summary": (spec.payload.__doc__ or spec.type).strip().splitlines()[0],
        "reply": {"channel": {"$ref": f"#/channels/{spec.type}.reply"},
                  "messages": [{"$ref": f"#/channels/{spec.type}.reply/messages/result"},
                               {"$ref": f"#/channels/{spec.type}.reply/messages/error"}]},
        "bindings": {"nats": {"queue": subjects.queue_group(service), "bindingVersion": NATS_BINDING_VERSION}},
        "x-protocols": sorted(p.value for p in spec.protocols),
        "x-requires-auth": spec.requires_auth,
    }
    if spec.permission:
        operation["x-permission"] = spec.permission
    return operation


def _events_channel() -> dict[str, Any]:
    return {
        "address": subjects.event("{protocol}", "{org_id}", "{event_type}"),
        "description": "Domain events; filter with NATS wildcards by protocol, org or type.",
        "parameters": {
            "protocol": {"enum": [p.value for p in Protocol], "description": "The envelope's protocol tag."},
            "org_id": {"description": "The organization the event belongs to (a UUID)."},
            "event_type": {"enum": sorted(t.value for t in EventType), "description": "The ontology's event type."},
        },
        "messages": {"event": {"$ref": "#/components/messages/event"}},
    }


def _message(name: str, title: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "title": title, "contentType": "application/json", "headers": HEADERS, "payload": payload}


def _envelope(message_type: str | None, payload_ref: dict[str, Any]) -> dict[str, Any]:
    """The envelope schema with its `type` fixed (a request) and its `payload` the message's model."""
    own: dict[str, Any] = {"payload": payload_ref}
    if message_type is not None:
        own["type"] = {"const": message_type}
    return {"allOf": [{"$ref": SCHEMAS + "Envelope"}, {"type": "object", "properties": own}]}


def _reply(kind: str, payload_ref: str) -> dict[str, Any]:
    return {"allOf": [{"$ref": SCHEMAS + "Envelope"},
                      {"type": "object", "properties": {"type": {"const": kind}, "payload": {"$ref": payload_ref}}}]}


def _error_schema() -> dict[str, Any]:
    families = sorted({error.family() for error in _all_errors()})
    return {
        "type": "object",
        "description": "An error reply's payload: the caller raises the typed error again.",
        "required": ["code", "family", "message", "details"],
        "properties": {
            "code": {"type": "string", "description": "The stable error code; a service may refine a family's.",
                     "examples": error_codes()},
            "family": {"type": "string", "enum": families,
                       "description": "The kernel's error family: what a caller that does not know `code` catches."},
            "message": {"type": "string"},
            "details": {"type": "object"},
        },
    }


def _all_errors() -> Iterator[type[errors.OneError]]:
    pending = [errors.OneError]
    while pending:
        error = pending.pop()
        yield error
        pending.extend(error.__subclasses__())
