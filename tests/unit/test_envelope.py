"""The envelope and error model, without a server: what goes on the wire and what comes back."""

import json
from uuid import uuid4

import pytest

from shared.kernel.envelope import (
    REPLY_ERROR,
    Empty,
    Encoded,
    Envelope,
    MessageSpec,
    Payload,
    Protocol,
    check_request,
    decode_envelope,
    decode_reply,
    encode_reply,
    register_message,
)
from shared.kernel.errors import (
    Conflict,
    InvalidRequest,
    MalformedMessage,
    NotFound,
    OneError,
    ProtocolMismatch,
    RateLimited,
    Unauthenticated,
    UnknownMessageType,
)
from shared.kernel.ids import uuid7


class Ping(Payload):
    text: str


PING = register_message("unit.ping", "one.unit.ping", Ping, Ping, protocols=(Protocol.NATIVE, Protocol.ACP))
SPECS = {PING.type: PING}


def envelope(**overrides) -> Envelope:
    fields = {"type": "unit.ping", "org_id": uuid7(), "actor_id": uuid7(), "payload": {"text": "hi"}} | overrides
    return Envelope(**fields)


class TestUuid7:
    def test_is_version_7_and_time_ordered_across_milliseconds(self) -> None:
        first = uuid7()
        import time

        time.sleep(0.002)
        assert first.version == 7 and first.variant == "specified in RFC 4122"
        assert uuid7() > first


class TestCheckRequest:
    def test_a_valid_request_yields_its_payload_model(self) -> None:
        payload, spec = check_request(envelope(), SPECS)
        assert payload == Ping(text="hi") and spec is PING

    @pytest.mark.parametrize(
        ("overrides", "error"),
        [
            ({"type": "unit.pong"}, UnknownMessageType),
            ({"protocol": Protocol.X402}, ProtocolMismatch),
            ({"org_id": None}, Unauthenticated),
            ({"actor_id": None}, Unauthenticated),
            ({"payload": {"text": 1}}, InvalidRequest),
            ({"payload": {"text": "hi", "smuggled": True}}, InvalidRequest),
        ],
    )
    def test_each_kind_of_bad_request_has_its_error(self, overrides: dict, error: type[OneError]) -> None:
        with pytest.raises(error):
            check_request(envelope(**overrides), SPECS)

    def test_messages_without_auth_need_no_auth_context(self) -> None:
        spec = MessageSpec("unit.open", "one.unit.open", Empty, Empty, requires_auth=False)
        check_request(Envelope(type="unit.open"), {spec.type: spec})


class TestDecodeEnvelope:
    @pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"type": "x", "unknown": 1}', b'{"type": "x", "protocol": "smtp"}'])
    def test_garbage_is_malformed(self, raw: bytes) -> None:
        with pytest.raises(MalformedMessage):
            decode_envelope(raw)

    def test_round_trips_through_bytes(self) -> None:
        original = envelope(protocol=Protocol.ACP, correlation_id=uuid4())
        assert decode_envelope(original.to_bytes()) == original


class TestReplies:
    def test_result_reply_is_caused_by_the_request(self) -> None:
        request = envelope()
        reply = decode_envelope(encode_reply(request, Ping(text="back")))
        assert reply.causation_id == request.id and reply.correlation_id == request.id
        assert decode_reply(encode_reply(request, Ping(text="back")), PING) == Ping(text="back")

    def test_a_result_serialised_once_replies_as_the_model_would(self) -> None:
        request = envelope()
        plain, encoded = (json.loads(encode_reply(request, r)) for r in (Ping(text="back"), Encoded.of(Ping(text="back"))))
        assert plain.keys() == encoded.keys() and plain["payload"] == encoded["payload"] == {"text": "back"}
        assert {k: v for k, v in plain.items() if k not in ("id", "occurred_at")} == {
            k: v for k, v in encoded.items() if k not in ("id", "occurred_at")
        }
        assert decode_reply(encode_reply(request, Encoded.of(Ping(text="back"))), PING) == Ping(text="back")

    @pytest.mark.parametrize("error", [NotFound("no such thing", {"id": "x"}), Conflict("stale"), RateLimited("slow down", {"retry_after": 2.5})])
    def test_errors_are_raised_again_with_their_type_and_details(self, error: OneError) -> None:
        raw = encode_reply(envelope(), error)
        assert json.loads(raw)["type"] == REPLY_ERROR
        with pytest.raises(type(error)) as caught:
            decode_reply(raw, PING)
        assert (caught.value.code, caught.value.message, caught.value.details) == (error.code, error.message, error.details)

    def test_rate_limited_exposes_retry_after(self) -> None:
        with pytest.raises(RateLimited) as caught:
            decode_reply(encode_reply(envelope(), RateLimited("slow", {"retry_after": 2.5})), PING)
        assert caught.value.retry_after == 2.5

    def test_an_unknown_code_keeps_its_code(self) -> None:
        raw = encode_reply(envelope(), OneError("future"))
        data = json.loads(raw)
        data["payload"]["code"] = "payment_required"
        with pytest.raises(OneError) as caught:
            decode_reply(json.dumps(data).encode(), PING)
        assert caught.value.code == "payment_required"

    def test_a_reply_that_does_not_match_the_result_model_is_malformed(self) -> None:
        with pytest.raises(MalformedMessage):
            decode_reply(encode_reply(envelope(), Empty()), PING)


def test_registering_a_type_twice_differently_is_refused() -> None:
    with pytest.raises(ValueError):
        register_message("unit.ping", "one.unit.other", Ping, Ping)


def test_a_service_specific_code_the_caller_does_not_know_comes_back_as_its_family() -> None:
    raw = encode_reply(envelope(), Conflict("the last owner cannot leave"))
    data = json.loads(raw)
    data["payload"]["code"] = "last_owner"  # as if raised by a subclass this process never imported
    with pytest.raises(Conflict) as caught:
        decode_reply(json.dumps(data).encode(), PING)
    assert caught.value.code == "last_owner" and data["payload"]["family"] == "conflict"
