"""The bus contract: envelopes round-trip, bad input gets its typed error, services answer health."""

import json

import pytest
from nats.aio.client import Client as NatsClient

from shared.kernel import subjects
from shared.kernel.envelope import REPLY_ERROR, REPLY_RESULT, AuthContext, Envelope, Protocol
from shared.kernel.errors import (
    Internal,
    InvalidRequest,
    MalformedMessage,
    ProtocolMismatch,
    Unauthenticated,
    Unavailable,
    UnknownMessageType,
)
from shared.runtime.bus import server_has_everything_sent
from shared.runtime.client import BusClient
from shared.runtime.service import HealthReport, health_spec
from shared.tools.stack import load_service
from tests.probe.app import CRASH, ECHO, Echo

pytestmark = pytest.mark.usefixtures("services")


async def raw_request(nc: NatsClient, subject: str, data: bytes) -> Envelope:
    reply = await nc.request(subject, data, timeout=5)
    return Envelope.model_validate_json(reply.data)


class TestRoundTrip:
    async def test_reply_envelope_is_caused_by_the_request(self, nc: NatsClient, org: AuthContext) -> None:
        request = Envelope(
            type="probe.echo", protocol=Protocol.A2A, org_id=org.org_id, actor_id=org.actor_id, payload={"text": "hé", "n": 3}
        )
        reply = await raw_request(nc, ECHO.subject, request.to_bytes())
        assert reply.type == REPLY_RESULT
        assert reply.payload == {"text": "hé", "n": 3}
        assert reply.causation_id == request.id
        assert reply.correlation_id == request.id
        assert reply.protocol == Protocol.A2A
        assert (reply.org_id, reply.actor_id) == (org.org_id, org.actor_id)
        assert reply.id != request.id and reply.id.version == 7

    async def test_client_returns_the_typed_result(self, bus: BusClient, org: AuthContext) -> None:
        assert await bus.request(ECHO, Echo(text="x", n=1), org) == Echo(text="x", n=1)

    async def test_every_service_answers_health(self, bus: BusClient) -> None:
        for name in subjects.SERVICES:
            report = await bus.request(health_spec(name))
            assert isinstance(report, HealthReport)
            assert report.service == name and report.healthy
            if load_service(name).owns_schema:
                assert report.schema_state.state == "current" and report.schema_state.version >= 1
            else:  # the gateway: stateless, no schema, no outbox
                assert report.schema_state.state == "none" and report.outbox_pending is None
            assert report.broker.connected and report.broker.jetstream


class TestBadInputGetsTypedErrors:
    async def assert_error(self, nc: NatsClient, subject: str, data: bytes, code: str) -> Envelope:
        reply = await raw_request(nc, subject, data)
        assert reply.type == REPLY_ERROR
        assert reply.payload["code"] == code, reply.payload
        assert "Traceback" not in json.dumps(reply.payload)
        return reply

    async def test_malformed_json(self, nc: NatsClient) -> None:
        await self.assert_error(nc, ECHO.subject, b"{not json", MalformedMessage.code)

    async def test_not_an_envelope(self, nc: NatsClient) -> None:
        reply = await self.assert_error(nc, ECHO.subject, b'{"hello": 1}', MalformedMessage.code)
        assert reply.payload["details"]["errors"]

    async def test_unknown_type(self, nc: NatsClient, org: AuthContext) -> None:
        envelope = Envelope(type="probe.nope", org_id=org.org_id, actor_id=org.actor_id)
        reply = await self.assert_error(nc, ECHO.subject, envelope.to_bytes(), UnknownMessageType.code)
        assert reply.causation_id == envelope.id

    async def test_unknown_protocol_tag(self, nc: NatsClient, org: AuthContext) -> None:
        data = json.loads(Envelope(type="probe.echo", org_id=org.org_id, actor_id=org.actor_id).to_bytes())
        data["protocol"] = "smtp"
        await self.assert_error(nc, ECHO.subject, json.dumps(data).encode(), MalformedMessage.code)

    async def test_wrong_protocol_tag(self, nc: NatsClient, org: AuthContext) -> None:
        envelope = Envelope(
            type="probe.echo", protocol=Protocol.X402, org_id=org.org_id, actor_id=org.actor_id, payload={"text": "x"}
        )
        reply = await self.assert_error(nc, ECHO.subject, envelope.to_bytes(), ProtocolMismatch.code)
        assert reply.payload["details"]["accepted"] == ["a2a", "native"]

    async def test_missing_auth_context(self, nc: NatsClient, org: AuthContext) -> None:
        envelope = Envelope(type="probe.echo", org_id=org.org_id, payload={"text": "x"})
        await self.assert_error(nc, ECHO.subject, envelope.to_bytes(), Unauthenticated.code)

    async def test_payload_that_does_not_match(self, nc: NatsClient, org: AuthContext) -> None:
        envelope = Envelope(type="probe.echo", org_id=org.org_id, actor_id=org.actor_id, payload={"text": 5, "extra": 1})
        reply = await self.assert_error(nc, ECHO.subject, envelope.to_bytes(), InvalidRequest.code)
        fields = {tuple(e["loc"]) for e in reply.payload["details"]["errors"]}
        assert fields == {("text",), ("extra",)}
        assert "5" not in json.dumps(reply.payload["details"])  # inputs are never echoed

    async def test_client_raises_the_typed_error_again(self, bus: BusClient, org: AuthContext) -> None:
        with pytest.raises(InvalidRequest) as caught:
            await bus.request(ECHO, {"text": ["not", "a", "string"]}, org)
        assert caught.value.code == "invalid"
        with pytest.raises(Unauthenticated):
            await bus.request(ECHO, {"text": "x"}, None)

    async def test_a_crashing_handler_answers_internal_with_an_error_id(self, bus: BusClient, org: AuthContext) -> None:
        with pytest.raises(Internal) as caught:
            await bus.request(CRASH, {}, org)
        assert caught.value.details["error_id"]
        assert "secret" not in caught.value.message

    async def test_nobody_listening_is_unavailable_not_a_timeout(self, bus: BusClient) -> None:
        from shared.kernel.envelope import Empty, MessageSpec

        ghost = MessageSpec("ghost.ping", "one.ghost.ping", Empty, Empty, requires_auth=False)
        with pytest.raises(Unavailable):
            await bus.request(ghost, {}, None, timeout=1)


class TestTimeouts:
    async def test_a_silent_service_is_unavailable_after_each_requests_own_timeout(self, bus: BusClient, nc: NatsClient) -> None:
        import asyncio
        import time

        from shared.kernel.envelope import Empty, MessageSpec
        from shared.kernel.ids import uuid7

        async def ignore(msg: object) -> None:
            pass

        silent = MessageSpec("silent.ping", f"one.silent.{uuid7().hex}", Empty, Empty, requires_auth=False)
        subscription = await nc.subscribe(silent.subject, cb=ignore)  # receives, never answers
        await server_has_everything_sent(nc)
        try:
            patient = asyncio.create_task(bus.request(silent, {}, None, timeout=3))
            await asyncio.sleep(0.05)
            start = time.monotonic()
            with pytest.raises(Unavailable, match="did not answer in time"):
                await bus.request(silent, {}, None, timeout=0.3)  # a shorter deadline than one already waiting
            assert 0.25 < time.monotonic() - start < 1.5 and not patient.done()
            with pytest.raises(Unavailable, match="did not answer in time"):
                await patient
        finally:
            await subscription.unsubscribe()


class TestSubscriptionsReachTheServer:
    async def test_the_last_ping_follows_every_command_queued_before_it(self, settings) -> None:
        """What `server_has_everything_sent` rests on: its PONG answers a PING written after the SUB.

        (A bare `flush()` writes its PING ahead of a SUB still queued for nats-py's
        flusher, which is how a request could find "no responders" right after a
        service said it had started.)
        """
        import nats

        connection = await nats.connect(settings.nats_url)
        sent: list[bytes] = []
        transport = connection._transport
        write, writelines = transport.write, transport.writelines
        transport.write = lambda data: (sent.append(bytes(data)), write(data))[1]
        transport.writelines = lambda chunks: (sent.extend(bytes(c) for c in chunks), writelines(chunks))[1]
        try:
            await connection.subscribe("one.probe.ordering", cb=None)
            await server_has_everything_sent(connection)
            wire = b"".join(sent)
            assert wire.count(b"PING") >= 1 and wire.rindex(b"PING") > wire.index(b"SUB one.probe.ordering")
        finally:
            transport.write, transport.writelines = write, writelines
            await connection.close()
