"""Staging domain events: the envelopes the outbox stores are, to the byte, those the model would write.

`EnvelopeWriter` writes an event's envelope without an `Envelope`; every reader still validates it as one.
These tests draw many envelopes (unicode, escapes, None fields, nested payloads, floats that JSON cannot hold,
tuples, times on and off the microsecond) and compare the writer's bytes with `Envelope(...).model_dump_json()`
for the same id and time, through the kernel and through `WorkContext.event_messages`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch
from uuid import UUID

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from shared.kernel import envelope as kernel_envelope, subjects
from shared.kernel.envelope import _OWN_FIELDS, Envelope, EnvelopeWriter, Protocol, decode_envelope, payload_json
from shared.kernel.events import EventPayload
from shared.kernel.ids import uuid7
from shared.kernel.ontology.types import EventType
from shared.runtime.context import WorkContext
from shared.runtime.outbox import Outbox, OutboxMessage, event_message

EXAMPLES = settings(max_examples=300, deadline=None)

text = st.text(st.characters(codec="utf-8"), max_size=30)  # any unicode but lone surrogates: quotes, controls, NUL
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | text
json_like = st.recursive(
    scalars | st.uuids() | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
payloads = st.dictionaries(text, json_like, max_size=5)
optional_ids = st.none() | st.uuids()
shared_fields = st.fixed_dictionaries({}, optional={
    "protocol": st.sampled_from(Protocol), "org_id": optional_ids, "actor_id": optional_ids, "role": st.none() | text,
    "permissions": st.lists(text, max_size=3).map(tuple), "scopes": st.lists(text, max_size=3).map(tuple),
    "correlation_id": optional_ids, "causation_id": optional_ids,
})
event_types = st.sampled_from(EventType) | st.text(st.characters(codec="utf-8"), min_size=1, max_size=200)
times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)) | st.just(
    datetime(2026, 5, 1, 12, 0, 0, 0, UTC)) | st.just(datetime(2026, 5, 1, 12, 0, 0, 120000, UTC))  # no µs, or trailing zeros


@contextmanager
def made_as(ids: list[UUID], at: datetime) -> Iterator[None]:
    """New envelopes get these ids, in order, and this time: the model's defaults, fixed."""
    with patch.object(kernel_envelope, "uuid7", iter(ids).__next__), patch.object(kernel_envelope, "utcnow", lambda: at):
        yield


def model_bytes(**fields: Any) -> bytes:
    """What the model writes: `Envelope.to_bytes` as it was, validated then serialised field by field."""
    return Envelope(**fields).model_dump_json().encode()


def test_the_writer_writes_every_field_in_the_models_order() -> None:
    assert [name for name in Envelope.model_fields if name in _OWN_FIELDS] == list(_OWN_FIELDS)
    id, written = EnvelopeWriter().write("unit.event", b"{}")
    assert list(decode_envelope(written).model_dump()) == list(Envelope.model_fields)
    assert decode_envelope(written).id == id


@EXAMPLES
@given(shared=shared_fields, type=event_types, payload=payloads, id=st.uuids(), at=times)
def test_a_written_envelope_is_the_models_bytes(
    shared: dict[str, Any], type: str, payload: dict[str, Any], id: UUID, at: datetime
) -> None:
    with made_as([id], at):
        written_id, written = EnvelopeWriter(**shared).write(type, payload_json(payload))
    expected = model_bytes(id=id, type=type, occurred_at=at, payload=payload, **shared)
    assert (written_id, written) == (id, expected)
    envelope = decode_envelope(written)
    assert envelope.to_bytes() == written == envelope.model_dump_json().encode()


@EXAMPLES
@given(
    protocol=st.sampled_from(Protocol), correlated=st.booleans(), other_org=st.booleans(), at=times,
    events=st.lists(st.tuples(event_types, st.builds(EventPayload, target_id=optional_ids,
                                                     target_type=st.none() | text, metadata=payloads)), max_size=5),
)
def test_staged_events_are_the_envelopes_they_were_before(
    protocol: Protocol, correlated: bool, other_org: bool, at: datetime, events: list[tuple[str, EventPayload]]
) -> None:
    """Byte for byte what `event_messages` made with a validated `Envelope` and `to_bytes`."""
    cause = Envelope(type="unit.cause", org_id=uuid7(), actor_id=uuid7(), correlation_id=uuid7() if correlated else None)
    ctx = WorkContext(cause, None, None)  # type: ignore[arg-type]
    org_id = uuid7() if other_org else cause.org_id
    ids = [uuid7() for _ in events]
    with made_as(ids, at):
        messages = ctx.event_messages(events, org_id=org_id, protocol=protocol)
    assert ctx.staged_events == len(events)
    expected = [
        OutboxMessage(subjects.event(protocol.value, org_id, event_type), id, model_bytes(
            id=id, protocol=protocol, type=event_type, org_id=org_id, actor_id=cause.actor_id,
            correlation_id=cause.correlation_id or cause.id, causation_id=cause.id, occurred_at=at,
            payload=payload.model_dump(mode="json")))
        for (event_type, payload), id in zip(events, ids, strict=True)
    ]
    assert messages == expected


@EXAMPLES
@given(payload=payloads, caused=st.booleans(), at=times)
def test_a_single_event_of_a_dict_is_the_envelope_it_was(payload: dict[str, Any], caused: bool, at: datetime) -> None:
    """`event_message` (a worker's job events, `Outbox.add_event`) takes its payload as a dict."""
    cause = Envelope(type="unit.cause") if caused else None
    org_id, actor_id, id = uuid7(), uuid7(), uuid7()
    with made_as([id], at):
        message = event_message("job_event", org_id, actor_id, payload, Protocol.NATIVE, cause)
    assert message == OutboxMessage(f"one.events.native.{org_id}.job_event", id, model_bytes(
        id=id, type="job_event", org_id=org_id, actor_id=actor_id, correlation_id=cause.id if cause else None,
        causation_id=cause.id if cause else None, occurred_at=at, payload=payload))


def test_a_type_is_checked_as_the_model_checks_it() -> None:
    writer = EnvelopeWriter()
    for refused in ("", "x" * 201):
        with pytest.raises(ValidationError):
            writer.write(refused, b"{}")
    _, written = writer.write(EventType.ENTITY_CREATED, b"{}")
    assert decode_envelope(written).type == "entity_created"


def test_a_writer_shares_only_what_envelopes_have_in_common() -> None:
    for own in ("id", "type", "occurred_at", "payload", "no_such_field"):
        with pytest.raises(TypeError):
            EnvelopeWriter(**{own: None})


def test_each_envelope_is_new() -> None:
    writer = EnvelopeWriter(org_id=uuid7())
    first, second = (decode_envelope(writer.write("unit.event", b"{}")[1]) for _ in range(2))
    assert first.id != second.id and first.occurred_at <= second.occurred_at


class _Runtime:
    """What `emit` needs of a runtime: an outbox whose staging is recorded."""

    def __init__(self) -> None:
        self.staged: list[OutboxMessage] = []
        self.outbox = self

    async def add_many(self, session: Any, messages: list[OutboxMessage]) -> None:
        self.staged += messages


async def test_emit_returns_the_envelopes_readers_will_get() -> None:
    runtime = _Runtime()
    ctx = WorkContext(Envelope(type="unit.cause", org_id=uuid7(), actor_id=uuid7()), object(), runtime)  # type: ignore[arg-type]
    one = await ctx.emit("unit.emitted", target_id=uuid7(), target_type="thing", metadata={"name": "é"})
    many = await ctx.emit_many([("unit.many", EventPayload(metadata={"n": n})) for n in range(3)])
    assert [one, *many] == [decode_envelope(m.json) for m in runtime.staged]
    assert [e.id for e in [one, *many]] == [m.id for m in runtime.staged]
    assert (one.type, one.payload["target_type"], one.payload["metadata"]) == ("unit.emitted", "thing", {"name": "é"})
    assert ctx.staged_events == 4


def test_the_outbox_stores_each_message_as_it_is() -> None:
    envelope = Envelope(type="unit.message", org_id=uuid7(), payload={"x": 1})
    message = OutboxMessage.of("one.unit.x", envelope)
    assert message.json == envelope.model_dump_json().encode() and message.envelope == envelope
    rows = Outbox("unit").rows_of([message, event_message("unit.event", uuid7(), None, {}, Protocol.A2A, envelope)])
    assert rows["outbox_envelopes"][0] == message.json
    assert rows["outbox_ids"][0] == envelope.id and rows["outbox_subjects"][0] == "one.unit.x"


def test_an_event_payload_is_written_as_the_model_writes_it() -> None:
    payload = EventPayload(target_id=uuid7(), metadata={"inf": float("inf"), "nan": float("nan"), "t": (1, "é")})
    assert payload.to_bytes() == payload.model_dump_json().encode()
    assert b'"inf":null,"nan":null' in payload.to_bytes()  # as the model writes floats JSON cannot hold
