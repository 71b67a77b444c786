"""The gateway keeps no task state: a task started through one gateway replica, which is then stopped and started
again on the same port mid-task, is fetched and followed to its end through the new one."""

import asyncio
from contextlib import aclosing
from urllib.parse import urlsplit

from a2a.types.a2a_pb2 import GetTaskRequest, SubscribeToTaskRequest, TaskState

from services.gateway.api import create_app
from services.gateway.server import serve
from services.gateway.settings import GatewaySettings
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.a2a.conftest import ANSWER, a2a_client, publish
from tests.a2a.test_server_tasks import ask, send
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account


async def test_a_task_survives_a_gateway_restart(bus: BusClient, settings: Settings, owner: Account,
                                                 model_server: ScriptedModel) -> None:
    gateway_settings = GatewaySettings(**settings.model_dump())
    first = await serve(create_app(bus, gateway_settings), "127.0.0.1", 0)
    port = urlsplit(first.url).port
    agent = await publish(bus, first.url, owner, model_server)
    agent.script.gates[1] = asyncio.Event()
    try:
        async with a2a_client(agent) as client:
            task = await send(client, ask("Outlive the gateway", immediately=True))
            assert task.status.state == TaskState.TASK_STATE_WORKING
    finally:
        first.server.should_exit = True
        await first.task
    second = await serve(create_app(bus, gateway_settings), "127.0.0.1", port)  # a new replica, no memory
    try:
        async with a2a_client(agent, "HTTP+JSON") as client:
            assert (await client.get_task(GetTaskRequest(id=task.id))).status.state == TaskState.TASK_STATE_WORKING
        async with a2a_client(agent, streaming=True) as client:
            async with aclosing(client.subscribe(SubscribeToTaskRequest(id=task.id))) as stream:
                assert (await anext(stream)).task.id == task.id
                agent.script.gates[1].set()
                events = [event async for event in stream]
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        async with a2a_client(agent) as client:
            done = await client.get_task(GetTaskRequest(id=task.id))
        assert done.status.state == TaskState.TASK_STATE_COMPLETED and done.artifacts[0].parts[0].text == ANSWER
    finally:
        second.server.should_exit = True
        await second.task
