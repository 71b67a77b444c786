"""The AsyncAPI 3 document: structurally valid, every registered message in it, every `$ref` resolving, and
its schemas true of the bytes the bus really carries. Served by the gateway and written by `one asyncapi`.

No AsyncAPI validator or meta-schema is installed (nor reachable offline), so the structure is checked
here against the 3.0.0 specification's required fields; each schema is checked as a JSON Schema.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from typer.testing import CliRunner

from shared.contracts.graph import THING_CREATE, Thing
from shared.kernel.envelope import Envelope, encode_reply
from shared.kernel.errors import NotFound
from shared.tools.cli import app as cli

KEY = re.compile(r"^[\w\d.\-_]+$")  # the 3.0 schema's pattern for channel, operation and component keys
DOC_URI = "urn:one:asyncapi"


@pytest.fixture(scope="module")
async def document(gateway: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        response = await http.get("/asyncapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve (at {part!r})"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_it_is_structurally_asyncapi_3(document: dict[str, Any]) -> None:
    doc = document
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["title"] and doc["info"]["version"]
    assert all(server["host"] and server["protocol"] == "nats" for server in doc["servers"].values())
    for key, channel in doc["channels"].items():
        assert KEY.match(key), key
        assert channel["address"] is None or isinstance(channel["address"], str), key
        for parameter in re.findall(r"{([^}]+)}", channel["address"] or ""):
            assert parameter in channel["parameters"], (key, parameter)
        assert channel["messages"] and all("$ref" in m for m in channel["messages"].values()), key
    for key, operation in doc["operations"].items():
        assert KEY.match(key) and operation["action"] in ("send", "receive"), key
        channel_ref = operation["channel"]["$ref"]
        assert operation["messages"] and all(m["$ref"].startswith(channel_ref + "/messages/")
                                             for m in operation["messages"]), key  # 3.0: the channel's own
        reply = operation.get("reply")
        if reply:
            assert all(m["$ref"].startswith(reply["channel"]["$ref"] + "/messages/") for m in reply["messages"]), key
    for key, message in doc["components"]["messages"].items():
        assert KEY.match(key) and message["payload"], key
    for key, schema in doc["components"]["schemas"].items():
        assert KEY.match(key), key
        Draft7Validator.check_schema(schema)  # the AsyncAPI schema format is a superset of draft 07


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = refs(document)
    assert len(found) > 100
    for ref in set(found):
        resolve(document, ref)


def test_every_registered_message_is_in_it(document: dict[str, Any]) -> None:
    """In a fresh interpreter, what importing the contracts registers (nothing else has run there)."""
    program = ("import json; from shared.contracts.asyncapi import asyncapi_document; asyncapi_document(); "
               "from shared.kernel.envelope import _REGISTRY; "
               "print(json.dumps({t: s.subject for t, s in _REGISTRY.items()}))")
    registered = json.loads(subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                                           check=True).stdout)
    assert {"graph.thing.create", "event.append", "tenancy.key.verify", "knowledge.search"} <= set(registered)
    for message_type, subject in registered.items():
        assert document["operations"][message_type]["action"] == "receive", message_type
        assert document["channels"][message_type]["address"] == subject
    events = document["channels"]["domain_events"]
    assert events["address"] == "one.events.{protocol}.{org_id}.{event_type}"
    assert "x402" in events["parameters"]["protocol"]["enum"] and events["parameters"]["event_type"]["enum"]
    error = document["components"]["schemas"]["ErrorPayload"]
    assert {"not_found", "invalid", "forbidden"} <= set(error["properties"]["code"]["examples"])


def _validator(document: dict[str, Any], message: str) -> Draft202012Validator:
    registry = Registry().with_resource(DOC_URI, Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{DOC_URI}#/components/messages/{message}/payload"}, registry=registry)


def test_its_schemas_hold_for_real_messages(document: dict[str, Any]) -> None:
    """A real request, result and error of `graph.thing.create`, as the bus's own code encodes them."""
    request = Envelope(type=THING_CREATE.type, org_id=uuid4(), actor_id=uuid4(),
                       payload={"type": "blog_post", "name": "Hello", "properties": {"slug": "hello"}})
    _validator(document, "graph.thing.create.request").validate(json.loads(request.to_bytes()))
    bad = json.loads(request.to_bytes()) | {"payload": {"type": "blog_post", "name": "x", "org_id": str(uuid4())}}
    assert not _validator(document, "graph.thing.create.request").is_valid(bad)  # the contract forbids extras

    thing = Thing.model_validate({
        "id": str(uuid4()), "type": "blog_post", "name": "Hello", "status": "active", "version": 1,
        "properties": {}, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
    _validator(document, "graph.thing.create.result").validate(json.loads(encode_reply(request, thing)))
    _validator(document, "error").validate(json.loads(encode_reply(request, NotFound("no such thing"))))
    assert not _validator(document, "error").is_valid(json.loads(encode_reply(request, thing)))


def test_one_asyncapi_writes_the_same_document(document: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    result = CliRunner().invoke(cli, ["asyncapi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == document
