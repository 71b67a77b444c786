"""The agents service under envelope encryption: a plugin install's secret settings are sealed in `agents.data_keys`'
scheme (never in clear in the row), still sign an action's request after `keys.rotate` of every sealing service (KEKs
and data keys), do not open as another install's or another org's, and a blob sealed the old way still opens and is
sealed the new way at the next `configure`. An external A2A agent's credential likewise: sealed, sent to the remote
after a rotation, and one stored in clear before sealing is sealed at its first use. An A2A push config's token is
sealed too, and still signs the notification and comes back to the client who set it. An agent config's HTTP tool
secret and MCP headers are sealed in the stored config, in every version a configure or a deploy writes (their use in
a run: tests/agents/test_custom_tools.py)."""

import asyncio
import json
from uuid import UUID

import asyncpg
import pytest
from a2a.types.a2a_pb2 import GetTaskPushNotificationConfigRequest, TaskPushNotificationConfig

from services.agents import keys, plugin_secrets
from shared.contracts.a2a import PUSH_TOKEN_HEADER
from shared.contracts.agents import AGENT_CONFIGURE, EXTERNAL_GET
from shared.contracts.agents.plugins import PLUGIN_CONFIGURE, PLUGIN_EXECUTE, PLUGIN_INSTANCE
from shared.contracts.keys import SEALING_SERVICES, keys_rotate_spec
from shared.kernel import sealing
from shared.kernel.ids import uuid7
from shared.kernel.sealing_envelope import data_key_id, is_envelope
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.a2a.conftest import Published, a2a_client, published  # noqa: F401 (fixture)
from tests.a2a.remote_agent import API_KEY as REMOTE_KEY, RemoteAgent
from tests.a2a.test_external_agents import add, delegating_agent, streaming_remote  # noqa: F401 (fixture)
from tests.a2a.test_server_push import TOKEN, Webhook, signed, webhook  # noqa: F401 (fixture)
from tests.a2a.test_server_tasks import ask, send
from tests.agents.agent_fixtures import chat, make_agent  # noqa: F401 (fixture)
from tests.agents.scripted_model import ScriptedModel
from tests.plugins.plugin_fixtures import (  # noqa: F401 (fixtures)
    WEATHER,
    Account,
    Endpoint,
    admin,
    endpoint,
    owner,
    sample,
)
from tests.plugins.test_execution import API_KEY, _active_weather

pytestmark = pytest.mark.usefixtures("services")

MODEL = "offline:smollm2-135m-instruct"
FORECAST = {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}}


async def _sealed(admin: asyncpg.Connection, install_id: object) -> bytes:  # noqa: F811
    return bytes(await admin.fetchval("SELECT secrets_sealed FROM agents.plugin_installs WHERE id = $1", install_id))


async def test_plugin_secrets_are_envelope_sealed_and_sign_after_every_rotation(
    bus: BusClient, sample, owner: Account, platform: Account, endpoint: Endpoint,  # noqa: F811
    admin: asyncpg.Connection, services: dict[str, ServiceRuntime],  # noqa: F811
) -> None:
    assert "agents" in SEALING_SERVICES
    await _active_weather(bus, owner, endpoint.server.url)
    install = await bus.request(PLUGIN_INSTANCE, {"name": WEATHER}, owner.ctx)
    sealed = await _sealed(admin, install.id)
    assert is_envelope(sealed) and API_KEY.encode() not in sealed
    key_org = await admin.fetchval("SELECT org_id FROM agents.data_keys WHERE id = $1", data_key_id(sealed))
    assert key_org == owner.org_id

    for service in SEALING_SERVICES:  # a new KEK re-wraps every data key; the orgs' current data keys retire
        rotated = await bus.request(keys_rotate_spec(service), {"data_keys": True}, platform.ctx)
        assert rotated.service == service and set(rotated.keys_by_kek) <= {rotated.current_kek}
        if service == "agents":
            assert rotated.rewrapped >= 1 and rotated.data_keys_rotated >= 1
    await bus.request(PLUGIN_EXECUTE, FORECAST, owner.ctx)
    assert endpoint.signed_with(API_KEY, endpoint.calls[-1])  # the old data key, re-wrapped, still opens it

    await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {"units": "metric"}}, owner.ctx)
    resealed = await _sealed(admin, install.id)
    assert is_envelope(resealed) and data_key_id(resealed) != data_key_id(sealed)  # the org's new data key
    await bus.request(PLUGIN_EXECUTE, FORECAST, owner.ctx)
    assert endpoint.signed_with(API_KEY, endpoint.calls[-1])

    agents = services["agents"]
    assert (await plugin_secrets.unseal(agents, owner.org_id, install.id, resealed))["apiKey"] == API_KEY
    with pytest.raises(ValueError):  # bound to the install: it does not open as another's
        await plugin_secrets.unseal(agents, owner.org_id, uuid7(), resealed)
    with pytest.raises(ValueError):  # nor in another org
        await plugin_secrets.unseal(agents, uuid7(), install.id, resealed)


async def test_a_plugin_secret_sealed_the_old_way_still_signs_and_is_resealed(
    bus: BusClient, sample, owner: Account, endpoint: Endpoint,  # noqa: F811
    admin: asyncpg.Connection, services: dict[str, ServiceRuntime],  # noqa: F811
) -> None:
    await _active_weather(bus, owner, endpoint.server.url)
    install = await bus.request(PLUGIN_INSTANCE, {"name": WEATHER}, owner.ctx)
    legacy_secret = plugin_secrets._legacy_secret(services["agents"].settings.data_dir)
    legacy = sealing.seal(legacy_secret, b'{"apiKey": "%s"}' % API_KEY.encode(), install.id.bytes,
                          b"one.agents.plugin-settings")
    await admin.execute("UPDATE agents.plugin_installs SET secrets_sealed = $1 WHERE id = $2", legacy, install.id)
    await bus.request(PLUGIN_EXECUTE, FORECAST, owner.ctx)
    assert endpoint.signed_with(API_KEY, endpoint.calls[-1])  # the old blob opens

    await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {"units": "imperial"}}, owner.ctx)
    resealed = await _sealed(admin, install.id)
    assert is_envelope(resealed) and API_KEY.encode() not in resealed
    await bus.request(PLUGIN_EXECUTE, FORECAST, owner.ctx)
    assert endpoint.signed_with(API_KEY, endpoint.calls[-1])


async def _credential_columns(admin: asyncpg.Connection, agent_id: object) -> asyncpg.Record:  # noqa: F811
    return await admin.fetchrow("SELECT credential, credential_sealed, credential_hint FROM agents.external_agents"
                                " WHERE id = $1", agent_id)


async def _delegate(bus: BusClient, owner: Account, model_server: ScriptedModel, slug: str,  # noqa: F811
                    remote: RemoteAgent, task: str) -> None:
    agent, _ = await delegating_agent(bus, owner, model_server, slug, task)
    run = (await chat(bus, owner, agent.slug, "ask the remote")).run
    assert run.status == "completed" and remote.received[-1] == task and remote.keys[-1] == REMOTE_KEY


async def test_an_external_agents_credential_is_sealed_and_reaches_the_remote_after_rotation(
    bus: BusClient, owner: Account, platform: Account, model_server: ScriptedModel,  # noqa: F811
    streaming_remote: RemoteAgent, admin: asyncpg.Connection,  # noqa: F811
) -> None:
    external = await add(bus, owner, streaming_remote.url)
    stored = await _credential_columns(admin, external.id)
    sealed = bytes(stored["credential_sealed"])
    assert stored["credential"] is None and is_envelope(sealed) and REMOTE_KEY.encode() not in sealed
    assert stored["credential_hint"] == external.credentials_hint == f"...{REMOTE_KEY[-4:]}"
    rotated = await bus.request(keys_rotate_spec("agents"), {"data_keys": True, "orgs": [str(owner.org_id)]},
                                platform.ctx)
    assert rotated.data_keys_rotated == 1 and set(rotated.keys_by_kek) == {rotated.current_kek}
    await _delegate(bus, owner, model_server, external.slug, streaming_remote, "after the rotation")

    await admin.execute("UPDATE agents.external_agents SET credential = $1, credential_sealed = NULL,"
                        " credential_hint = NULL WHERE id = $2", REMOTE_KEY, external.id)  # as stored before v0009
    legacy = await bus.request(EXTERNAL_GET, {"slug": external.slug}, owner.ctx)
    assert legacy.has_credentials and legacy.credentials_hint == f"...{REMOTE_KEY[-4:]}"
    await _delegate(bus, owner, model_server, external.slug, streaming_remote, "from the clear column")
    stored = await _credential_columns(admin, external.id)
    assert stored["credential"] is None and is_envelope(bytes(stored["credential_sealed"]))  # sealed at first use
    await _delegate(bus, owner, model_server, external.slug, streaming_remote, "sealed again")


async def test_an_a2a_push_configs_token_is_sealed_and_still_signs_the_notification(
    published: Published, webhook: Webhook, admin: asyncpg.Connection  # noqa: F811
) -> None:
    async with a2a_client(published, "HTTP+JSON") as client:
        task = await send(client, ask("Hello"))
        await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task.id, id="sealed", url=webhook.url, token=TOKEN))
        got = await client.get_task_push_notification_config(GetTaskPushNotificationConfigRequest(
            task_id=task.id, id="sealed"))
        assert got.token == TOKEN  # opened for the client who set it
    stored = await admin.fetchrow("SELECT token, secrets_sealed FROM agents.a2a_push_configs WHERE task_id = $1",
                                  UUID(task.id))
    sealed = bytes(stored["secrets_sealed"])
    assert stored["token"] is None and is_envelope(sealed) and TOKEN.encode() not in sealed
    await asyncio.wait_for(webhook.arrived.wait(), 60)
    headers, body = webhook.received[-1]
    assert headers[PUSH_TOKEN_HEADER.lower()] == TOKEN and signed(headers, body, TOKEN)


async def test_an_agent_configs_tool_secret_and_mcp_headers_are_sealed_in_every_version(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime],  # noqa: F811
) -> None:
    tool = {"name": "lookup", "description": "d", "url": "http://127.0.0.1:9/x", "secret": "tool-secret-4711"}
    server = {"name": "calc", "url": "http://127.0.0.1:9/mcp", "tools": ["add"],
              "headers": {"Authorization": "Bearer mcp-token-4711"}}
    agent = await make_agent(bus, owner, MODEL, http_tools=[tool], mcp_servers=[server])
    await bus.request(AGENT_CONFIGURE, {"slug": agent.slug, "config": {  # no secret given: the sealed one is kept
        "model": MODEL, "http_tools": [{k: v for k, v in tool.items() if k != "secret"}],
        "mcp_servers": [server]}}, owner.ctx)
    rows = await admin.fetch("SELECT config::text AS config FROM agents.agent_configs WHERE agent_id = $1"
                           " ORDER BY created_at", agent.id)
    assert len(rows) == 3 and all("4711" not in row["config"] for row in rows)  # dev v1, prod v1, dev v2
    config = json.loads(rows[-1]["config"])
    opened = await keys.open_config(services["agents"], owner.org_id, agent.id, config)
    assert opened["http_tools"][0]["secret"] == tool["secret"]
    assert opened["mcp_servers"][0]["headers"] == server["headers"]
    with pytest.raises(ValueError):  # bound to the agent: another agent's config does not open it
        await keys.open_config(services["agents"], owner.org_id, uuid7(), config)
