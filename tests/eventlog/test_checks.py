"""One rule for `metadata.protocol`, whether an event is appended or arrives on the stream (no servers needed)."""

import json

import pytest

from services.eventlog.checks import check_incoming
from shared.contracts.eventlog import InvalidEvent
from shared.kernel.envelope import Envelope, Protocol
from shared.kernel.ids import uuid7


def arriving(protocol: Protocol, metadata: dict) -> tuple[bytes, str]:
    """A payment event off the stream, on the subject its envelope says."""
    envelope = Envelope(protocol=protocol, type="payment_event", org_id=uuid7(), actor_id=uuid7(),
                        payload={"metadata": metadata})
    return envelope.to_bytes(), f"one.events.{protocol.value}.{envelope.org_id}.payment_event"


def test_a_protocol_event_over_its_protocol_is_filed_under_it() -> None:
    event = check_incoming(*arriving(Protocol.X402, {"amount": 5}), None, 1)
    assert (event.protocol, event.transport_protocol, json.loads(event.patch)) == ("x402", "x402", {"protocol": "x402"})


def test_a_protocol_event_published_natively_must_name_its_protocol() -> None:
    with pytest.raises(InvalidEvent) as refused:
        check_incoming(*arriving(Protocol.NATIVE, {"amount": 5}), None, 1)
    assert refused.value.reason_code == "missing_protocol"


def test_the_protocol_an_event_names_is_kept_whatever_it_travelled_over() -> None:
    event = check_incoming(*arriving(Protocol.A2A, {"protocol": "acp"}), None, 1)
    assert (event.protocol, event.transport_protocol, event.patch) == ("acp", "a2a", "{}")


def test_an_unknown_protocol_is_refused_over_any_transport() -> None:
    for transport in (Protocol.NATIVE, Protocol.X402):
        with pytest.raises(InvalidEvent) as refused:
            check_incoming(*arriving(transport, {"protocol": "carrier-pigeon"}), None, 1)
        assert refused.value.reason_code == "unknown_protocol"
