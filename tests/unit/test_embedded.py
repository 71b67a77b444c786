"""The embedded servers are real: pgvector works, data and ports survive restarts."""

import asyncio
import urllib.request

import asyncpg
import nats
import pytest

from shared.tools.embedded import EmbeddedNats, EmbeddedPostgres, free_port


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.fixture
def pg(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg")
    yield server
    server.stop()


@pytest.fixture
def nats_server(tmp_path):
    server = EmbeddedNats(tmp_path / "nats", http_port=0)
    yield server
    server.stop()


def test_postgres_pgvector_and_restart(pg, tmp_path):
    url = pg.start()
    assert url == pg.url
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    assert pg.start() == url, "second start() reuses the running server"
    assert EmbeddedPostgres(tmp_path / "pg").start() == url, "another instance reuses it too"

    async def first_run():
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            distance = await conn.fetchval("SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector")
            assert isinstance(distance, float)
            assert 0 < distance < 0.1
            assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
            assert await conn.fetchval("SHOW max_connections") == "200"
            await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
            await conn.execute("INSERT INTO kept VALUES (1, 'survives restart')")
        finally:
            await conn.close()

    asyncio.run(first_run())

    pg.stop()
    pg.stop()  # idempotent
    with pytest.raises(OSError):
        asyncio.run(asyncpg.connect(url, timeout=2))

    assert pg.start() == url, "same port after restart"

    async def second_run():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT note FROM kept WHERE id = 1")
        finally:
            await conn.close()

    assert asyncio.run(second_run()) == "survives restart"


def test_nats_jetstream_survives_restart(nats_server, tmp_path):
    url = nats_server.start()
    assert url.startswith("nats://127.0.0.1:")
    assert nats_server.start() == url, "second start() reuses the running server"
    assert EmbeddedNats(tmp_path / "nats", http_port=0).start() == url

    with urllib.request.urlopen(f"http://127.0.0.1:{nats_server.http_port}/healthz", timeout=5) as r:
        assert r.status == 200

    async def publish():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="EMBED", subjects=["embed.>"])
            ack = await js.publish("embed.hello", b"persisted")
            assert ack.stream == "EMBED" and ack.seq == 1
        finally:
            await nc.close()

    asyncio.run(publish())

    nats_server.stop()
    nats_server.stop()  # idempotent
    assert nats_server.start() == url, "same port after restart"

    async def read_back():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            info = await js.stream_info("EMBED")
            msg = await js.get_msg("EMBED", 1)
            return info.state.messages, msg.data
        finally:
            await nc.close()

    assert asyncio.run(read_back()) == (1, b"persisted")


def test_nats_kill_then_start(nats_server):
    url = nats_server.start()

    async def publish():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="CRASH", subjects=["crash.>"])
            await js.publish("crash.x", b"before kill")
        finally:
            await nc.close()

    asyncio.run(publish())
    nats_server.kill()
    nats_server.kill()  # idempotent
    assert nats_server.start() == url

    async def count():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info("CRASH")).state.messages
        finally:
            await nc.close()

    assert asyncio.run(count()) == 1
