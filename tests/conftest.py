"""Session-wide real servers, migrated schemas and running services; a fresh org per test."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from services.agents import state as agents_state
from services.agents.providers import Providers
from services.gateway.api import create_app
from services.gateway.mcp.mount import close as close_mcp
from services.gateway.server import GatewayState, serve
from services.gateway.settings import GatewaySettings
from services.tenancy.bootstrap import bootstrap_platform
from shared.kernel import subjects
from shared.kernel.envelope import AuthContext
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.db import Database, app_url
from shared.runtime.migrate import migrate_services
from shared.runtime.service import ServiceDefinition, ServiceRuntime
from shared.runtime.tracing import setup_tracing
from shared.tools.stack import all_migrations, load_service
from tests.agents.scripted_model import ScriptedModel
from tests.gateway.conftest import KEY_CACHE_TTL
from tests.infra import Servers, provide_servers
from tests.probe.app import definition as probe_definition
from tests.tenancy.conftest import Account, account


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    found = provide_servers(tmp_path_factory.mktemp("servers"))
    yield found
    found.stop()


@pytest.fixture(scope="session")
def settings(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=servers.database_url,
        nats_url=servers.nats_url,
        data_dir=tmp_path_factory.mktemp("data"),
        trace_sample_ratio=1.0,
        outbox_poll_interval=0.1,
        request_timeout=5.0,
    )


SERVICE_SETTINGS = {
    "knowledge": {"knowledge_debounce_ms": 300},
    "gateway": {"gateway_port": 0},
    "agents": {"agents_x402_fetch_private": True},  # agents pay the test gateway on 127.0.0.1
    "graph": {"graph_identity_sync": False},  # tests/graph/test_identity.py runs the consumer: other tests count things
}
"""Services' own fields the session's services run with; the rest is the environment's, as in production."""


def service_settings(definition: ServiceDefinition, settings: Settings) -> Settings:
    """The service's own settings class: the common values of `settings` and the test values above."""
    return definition.settings(**settings.model_dump(), **SERVICE_SETTINGS.get(definition.name, {}))


@pytest.fixture(scope="session")
def spans(settings: Settings) -> InMemorySpanExporter:
    """Every span the test process ends; set up before any broker exists."""
    exporter = InMemorySpanExporter()
    setup_tracing("tests", exporter=exporter, sample_ratio=1.0, settings=settings)
    return exporter


@pytest.fixture(scope="session")
async def migrated(settings: Settings) -> Settings:
    await migrate_services(settings, {**all_migrations(), "probe": probe_definition.migrations})
    return settings


@pytest.fixture(scope="session")
async def services(migrated: Settings, spans: InMemorySpanExporter) -> AsyncIterator[dict[str, ServiceRuntime]]:
    """The six services and the probe, in this process (so their spans are captured)."""
    definitions = [load_service(name) for name in subjects.SERVICES] + [probe_definition]
    runtimes = {d.name: ServiceRuntime(d, service_settings(d, migrated)) for d in definitions}
    await asyncio.gather(*(r.start(migrate=False) for r in runtimes.values()))
    yield runtimes
    await asyncio.gather(*(r.stop() for r in runtimes.values()))


@pytest.fixture(scope="session")
async def bus(services: dict[str, ServiceRuntime], settings: Settings) -> AsyncIterator[BusClient]:
    client = await BusClient.connect(settings, name="tests")
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def nc(settings: Settings) -> AsyncIterator[NatsClient]:
    """A bare nats-py connection, for sending bytes no client would send."""
    connection = await nats.connect(settings.nats_url)
    yield connection
    await connection.drain()


@pytest.fixture
def org() -> AuthContext:
    """A fresh organization and actor per test, so tests never see each other's rows."""
    return AuthContext(org_id=uuid7(), actor_id=uuid7())


@pytest.fixture
def other_org() -> AuthContext:
    return AuthContext(org_id=uuid7(), actor_id=uuid7())


def pytest_report_header(config: pytest.Config) -> str:
    return f"one-on-a-bus tests; servers from env, testcontainers or embedded (repo {Path(__file__).parent.parent})"


# The session-wide fixtures many directories use are defined here, once: a fixture imported into a test module is
# a second definition with a cache of its own, so two modules got two gateways, two platform keys and two scripted
# model servers, and the later server took the agents replica from the earlier one's tests.


@pytest.fixture(scope="session")
async def platform(services: dict[str, ServiceRuntime], migrated: Settings, bus: BusClient) -> Account:
    """The platform organization's owner (bootstrapped, or a new key for it)."""
    db = Database(app_url(migrated), pool_size=1)
    try:
        result = await bootstrap_platform(db, services["tenancy"].settings, new_key_if_exists=True)  # its pepper
    finally:
        await db.dispose()
    return await account(bus, result.api_key)


@pytest.fixture(scope="session")
async def gateway(services: dict[str, ServiceRuntime], bus: BusClient, settings: Settings) -> AsyncIterator[str]:
    """The gateway's base URL (uvicorn on a free loopback port, a short key cache so revocation shows)."""
    gateway_settings = GatewaySettings(**settings.model_dump(), gateway_key_cache_ttl=KEY_CACHE_TTL)
    served: GatewayState = await serve(create_app(bus, gateway_settings), "127.0.0.1", 0)
    yield served.url
    served.server.should_exit = True
    await served.task
    await close_mcp(served.server.config.app)


@pytest.fixture(scope="session")
async def model_server(services: dict[str, ServiceRuntime]) -> AsyncIterator[ScriptedModel]:
    """The scripted model server, and the session's agents replica pointed at it for `openai:` models."""
    server = ScriptedModel()
    await server.start()
    agents = services["agents"]
    model_settings = agents.settings.model_copy(update={"agents_openai_base_url": server.url,
                                                        "agents_openai_api_key": SecretStr("test-key")})
    agents_state.of(agents).providers = Providers(model_settings)
    yield server
    await server.stop()
