"""Streaming from a published agent with the official a2a-sdk client on both bindings: SendStreamingMessage (SSE)
to the task's end, and SubscribeToTask again after the client went away mid-task."""

import asyncio
from contextlib import aclosing

import pytest
from a2a.types.a2a_pb2 import SubscribeToTaskRequest, TaskState
from a2a.utils.errors import UnsupportedOperationError

from shared.runtime.client import BusClient
from tests.a2a.conftest import ANSWER, a2a_client, publish
from tests.a2a.test_server_tasks import BINDINGS, ask, send
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account


@pytest.mark.parametrize("binding", BINDINGS)
async def test_stream_to_the_end(bus: BusClient, gateway: str, owner: Account, model_server: ScriptedModel,
                                 binding: str) -> None:
    agent = await publish(bus, gateway, owner, model_server)
    async with a2a_client(agent, binding, streaming=True) as client:
        events = [event async for event in client.send_message(ask("Stream it"))]
    kinds = [event.WhichOneof("payload") for event in events]
    assert kinds[0] == "task" and events[0].task.status.state == TaskState.TASK_STATE_WORKING
    assert kinds[-1] == "status_update" and events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    whole = [e.artifact_update for e in events if e.WhichOneof("payload") == "artifact_update" and
             e.artifact_update.last_chunk]
    assert [a.artifact.parts[0].text for a in whole] == [ANSWER]
    assert {e.artifact_update.task_id for e in events if e.HasField("artifact_update")} == {events[0].task.id}


@pytest.mark.parametrize("binding", BINDINGS)
async def test_resubscribe_after_a_disconnect(bus: BusClient, gateway: str, owner: Account,
                                              model_server: ScriptedModel, binding: str) -> None:
    agent = await publish(bus, gateway, owner, model_server)
    agent.script.gates[1] = asyncio.Event()  # the run waits for the model until the test lets it answer
    async with a2a_client(agent, binding) as client:
        task = await send(client, ask("Slow one", immediately=True))
    async with a2a_client(agent, binding, streaming=True) as client:
        async with aclosing(client.subscribe(SubscribeToTaskRequest(id=task.id))) as first:
            seen = await anext(first)  # the task as it stands; then the client goes away
        assert seen.task.id == task.id and seen.task.status.state == TaskState.TASK_STATE_WORKING
    async with a2a_client(agent, binding, streaming=True) as client:
        async with aclosing(client.subscribe(SubscribeToTaskRequest(id=task.id))) as again:
            current = await anext(again)
            assert current.task.status.state == TaskState.TASK_STATE_WORKING
            agent.script.gates[1].set()
            rest = [event async for event in again]
        assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        assert any(e.HasField("artifact_update") and e.artifact_update.artifact.parts[0].text == ANSWER for e in rest)
        with pytest.raises(UnsupportedOperationError):  # an ended task has nothing more to stream
            async with aclosing(client.subscribe(SubscribeToTaskRequest(id=task.id))) as ended:
                await anext(ended)
