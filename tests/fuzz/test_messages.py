"""Every registered message type, fuzzed on its own subject over the real bus (issue 23, "Fuzzing").

For each type: payloads drawn from its JSON Schema, the same payloads mutated one field at a time, and any
JSON object at all (wrong types, huge and deeply nested values, unicode edge cases, null bytes), sent as an
org owner of a fuzzing organization so the handlers are reached, not only the RBAC check. Each must answer
within the timeout with its result or a typed error — never `internal`, never silence. Then bytes no client
would send (not JSON, not an envelope, a wrong type) on every subject. `FUZZ_EXAMPLES` deepens a run.
"""

import importlib
import json
import os
import pkgutil
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

import shared.contracts
from shared.kernel import subjects
from shared.kernel.envelope import _REGISTRY, Envelope, MessageSpec, decode_reply
from shared.kernel.errors import OneError
from shared.kernel.ids import uuid7
from shared.kernel.rbac import role_permissions
from shared.runtime.client import BusClient
from tests.fuzz.strategies import payloads

for module in pkgutil.walk_packages(shared.contracts.__path__, "shared.contracts."):
    importlib.import_module(module.name)

PLATFORM = {*subjects.SERVICES, "proto"}
SPECS = sorted((s for s in _REGISTRY.values() if s.subject.split(".")[1] in PLATFORM), key=lambda s: s.type)
"""The platform's message types (not the test probes' own, which crash on purpose)."""
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
ANSWER_WITHIN = 30.0
"""Seconds: generous on a loaded machine; a handler that takes longer on any input is a finding."""

FUZZ_ORG, FUZZ_ACTOR = uuid7(), uuid7()
OWNER = role_permissions("org_owner")


def envelope_bytes(spec: MessageSpec[Any, Any], payload: Any, **fields: Any) -> bytes:
    """The request as JSON, built by hand: the payload may hold what no model would serialise."""
    protocol = "native" if "native" in {p.value for p in spec.protocols} else min(p.value for p in spec.protocols)
    envelope = json.loads(Envelope(type=spec.type, protocol=protocol, org_id=FUZZ_ORG, actor_id=FUZZ_ACTOR,
                                   role="org_owner", permissions=OWNER).to_bytes())
    envelope.update(fields, payload=payload)
    return json.dumps(envelope).encode()


async def ask(nc: NatsClient, subject: str, body: bytes) -> bytes:
    try:
        return (await nc.request(subject, body, timeout=ANSWER_WITHIN)).data
    except NatsTimeout:
        pytest.fail(f"no answer on {subject} within {ANSWER_WITHIN} s to {body[:300]!r}")
    except NoRespondersError:
        pytest.fail(f"nobody serves {subject}")


def assert_answered(raw: bytes, spec: MessageSpec[Any, Any], body: bytes) -> None:
    """A result of the declared shape, or a typed error that is not `internal`."""
    try:
        decode_reply(raw, spec)
    except OneError as error:
        assert error.code != "internal", f"{spec.type}: internal error {error} for {body[:500]!r}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
async def test_every_payload_gets_a_result_or_a_typed_error(spec: MessageSpec[Any, Any], bus: BusClient,
                                                             nc: NatsClient) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
              suppress_health_check=list(HealthCheck))
    @given(payload=payloads(spec.payload.model_json_schema()))
    def draw(payload: dict[str, Any]) -> None:
        drawn.append(payload)

    drawn: list[dict[str, Any]] = []
    draw()
    for payload in drawn:
        body = envelope_bytes(spec, payload)
        assert_answered(await ask(nc, spec.subject, body), spec, body)


NOT_ENVELOPES = [b"", b"\x00\xff\xfe", b"{", b"[]", b"null", b'"a"', b"{}", b'{"type": 7}', "{\"type\": \"\ud800\"}".encode(
    "utf-8", "surrogatepass"), b'{"id": "x", "type": "graph.thing.get", "payload": []}', b"9" * 5000]
SUBJECTS = sorted({(s.subject, s.type) for s in SPECS})


@pytest.mark.parametrize(("subject", "type_"), SUBJECTS, ids=[s for s, _ in SUBJECTS])
async def test_bytes_no_client_sends_get_a_typed_error(subject: str, type_: str, bus: BusClient,
                                                       nc: NatsClient) -> None:
    spec = _REGISTRY[type_]
    bodies = [*NOT_ENVELOPES, envelope_bytes(spec, {}, type="no.such.type"), envelope_bytes(spec, [1, 2]),
              envelope_bytes(spec, {}, org_id="not-a-uuid"), envelope_bytes(spec, {}, protocol="smtp")]
    for body in bodies:
        raw = await ask(nc, subject, body)
        with pytest.raises(OneError) as refused:
            decode_reply(raw, spec)
        assert refused.value.code != "internal", f"{subject}: internal error for {body[:200]!r}"
