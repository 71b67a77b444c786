"""The blocking one-request path (`one whoami`): tenancy's real answer over the real broker, the same typed errors
as `BusClient`, and a hand-over to nats-py for what it does not speak. It blocks, so it runs in a thread here:
the session's services share this test's event loop."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from shared.kernel.envelope import Empty, Envelope, MessageSpec
from shared.kernel.errors import InvalidRequest, Unauthenticated, Unavailable
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.tools.sdk import One
from shared.tools.sdk.blocking_bus import BlockingBus
from shared.tools.sdk.connect import ClientSettings, verify_blocking
from tests.tenancy.conftest import Account

NOBODY = MessageSpec("test.nobody", "one.test.nobody.listens", Empty, Empty)


def client_settings(nats_url: str, timeout: float = 5.0) -> ClientSettings:
    return ClientSettings(nats_url=nats_url, request_timeout=timeout)


async def test_the_key_is_verified_as_the_sdk_verifies_it(settings: Settings, owner: Account) -> None:
    blocking = await asyncio.to_thread(verify_blocking, key=owner.key, timeout=5.0, nats_url=settings.nats_url)
    async with await One.connect(nats_url=settings.nats_url, key=owner.key) as one:
        assert blocking == await one.whoami()
    assert blocking.org_id == owner.org_id and blocking.actor_id == owner.person_id


async def test_a_garbage_key_is_refused_with_tenancy_s_typed_error(settings: Settings) -> None:
    with pytest.raises(Unauthenticated):
        await asyncio.to_thread(verify_blocking, key="one_live_garbage_0123456789", nats_url=settings.nats_url)


async def test_no_responder_and_no_answer_are_unavailable(settings: Settings, bus: BusClient) -> None:
    def ask(spec: MessageSpec, timeout: float) -> object:
        with BlockingBus.connect(client_settings(settings.nats_url, timeout)) as blocking:
            return blocking.request(spec, Envelope(type=spec.type))

    with pytest.raises(Unavailable, match="no service answers"):
        await asyncio.to_thread(ask, NOBODY, 5.0)
    silent = await bus.nc.subscribe("one.test.silent")  # receives, never replies
    await bus.nc.flush()  # the server has the subscription before the other connection publishes
    try:
        with pytest.raises(Unavailable, match="did not answer in time"):
            await asyncio.to_thread(ask, replace(NOBODY, subject="one.test.silent"), 0.5)
    finally:
        await silent.unsubscribe()


async def test_a_reply_that_is_not_the_result_model_is_a_typed_error(settings: Settings, bus: BusClient) -> None:
    """A service's error reply is raised as its class; the envelope is what `BusClient` would send."""

    async def refuse(msg) -> None:  # noqa: ANN001
        request = Envelope.model_validate_json(msg.data)
        assert request.type == NOBODY.type and request.payload == {"x": 1}
        await msg.respond(json.dumps({"type": "error", "payload": {"code": "invalid", "message": "no x"}}).encode())

    subscription = await bus.nc.subscribe("one.test.refuses", cb=refuse)
    await bus.nc.flush()
    try:
        with pytest.raises(InvalidRequest, match="no x"):
            await asyncio.to_thread(_request, settings.nats_url, replace(NOBODY, subject="one.test.refuses"), {"x": 1})
    finally:
        await subscription.unsubscribe()


def _request(nats_url: str, spec: MessageSpec, payload: dict) -> object:
    with BlockingBus.connect(client_settings(nats_url)) as blocking:
        return blocking.request(spec, Envelope(type=spec.type, payload=payload))


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    """A TCP server speaking a scripted bit of the NATS protocol: what a real broker does rarely, on demand."""
    servers = []

    async def serve(script: Script) -> str:
        server = await asyncio.start_server(script, "127.0.0.1", 0)
        servers.append(server)
        return f"nats://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield serve
    for server in servers:
        server.close()


async def test_a_tls_server_is_left_to_nats_py_before_anything_is_sent(fake_server, owner: Account) -> None:  # noqa: ANN001
    received = []

    async def tls_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"x","tls_required":true,"max_payload":1048576}\r\n')
        await writer.drain()
        received.append(await reader.read())
        writer.close()

    url = await fake_server(tls_only)
    assert await asyncio.to_thread(verify_blocking, key=owner.key, nats_url=url) is None
    await asyncio.sleep(0.1)
    assert received == [b""]  # the key never went to a server we cannot speak TLS to


async def test_pings_are_answered_and_a_headers_reply_is_read(fake_server, owner: Account) -> None:  # noqa: ANN001
    """The server may PING at any time and reply with headers (HMSG); the CONNECT logs in with the URL's user."""
    seen: dict[str, object] = {}

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"x","headers":true,"max_payload":1048576}\r\n')
        seen["connect"] = json.loads((await reader.readline()).split(b" ", 1)[1])
        sub = (await reader.readline()).split()
        await reader.readline()  # UNSUB <sid> 1
        pub = (await reader.readline()).split()
        seen["request"] = json.loads((await reader.readexactly(int(pub[3]) + 2))[:-2])
        writer.write(b"PING\r\n")
        await writer.drain()
        seen["pong"] = await reader.readline()
        body = json.dumps({"type": "result", "payload": {}}).encode()
        headers = b"NATS/1.0\r\nX-Seen: 1\r\n\r\n"
        writer.write(b"MSG _INBOX.someone.else 9 2\r\n{}\r\n")  # not ours: skipped
        writer.write(f"HMSG {sub[1].decode()} {sub[2].decode()} {len(headers)} {len(headers) + len(body)}\r\n".encode()
                     + headers + body + b"\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    url = (await fake_server(broker)).replace("nats://", "nats://cli:secret@")
    result = await asyncio.to_thread(_request, url, NOBODY, {"k": "v"})
    assert result == Empty()
    assert seen["connect"]["user"] == "cli" and seen["connect"]["pass"] == "secret"
    assert seen["request"]["type"] == NOBODY.type and seen["request"]["payload"] == {"k": "v"}
    assert seen["pong"] == b"PONG\r\n"


async def test_a_refused_login_is_a_connection_error(fake_server) -> None:  # noqa: ANN001
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"x","auth_required":true}\r\n')
        await reader.readline()
        writer.write(b"-ERR 'Authorization Violation'\r\n")
        await writer.drain()
        writer.close()

    with pytest.raises(ConnectionError, match="Authorization Violation"):
        await asyncio.to_thread(_request, await fake_server(refuse), NOBODY, {})
