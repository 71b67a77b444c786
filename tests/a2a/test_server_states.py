"""A2A's interrupted and refused task states, produced for real and driven with the official a2a-sdk client over real
HTTP: input-required (the model calls `ask_user`; the client's reply on the same task resumes the same run),
auth-required (a tool refused for want of credentials the caller can arrange), rejected (the agent refuses before
any run: an input mode it does not read, the org's inference quota spent); and the inbound task's `task_event`s."""

import asyncio
import json

import pytest
from a2a.helpers import new_text_message
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatusUpdateEvent,
)

from shared.contracts.agents import CHAT, EXECUTION_LIST, EXTERNAL_ADD, EXTERNAL_CREDENTIALS, RUN_GET
from shared.contracts.tenancy import QUOTA_SET
from shared.runtime.client import BusClient
from tests.a2a.conftest import Published, a2a_client, publish
from tests.a2a.test_server_push import Webhook
from tests.agents.agent_fixtures import make_agent, wait_events
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account, unique

BINDINGS = ["JSONRPC", "HTTP+JSON"]
QUESTION = "Which city do you leave from?"
PLAN = "From Lyon: the 7:04 train."


def ask(text: str, *, task_id: str = "", context_id: str = "", immediately: bool = False) -> SendMessageRequest:
    message = new_text_message(text, role=Role.ROLE_USER, context_id=context_id or None, task_id=task_id or None)
    return SendMessageRequest(message=message, configuration=SendMessageConfiguration(return_immediately=immediately))


async def send(client, request: SendMessageRequest):  # noqa: ANN001, ANN201 - the SDK's own types
    events = [event async for event in client.send_message(request)]
    assert events, "the server answered nothing"
    return events[-1].task


async def task_events(bus: BusClient, account: Account, task_id: str, minimum: int) -> list[str]:
    events = await wait_events(bus, account, ["task_event"], minimum, metadata={"taskId": task_id})
    assert all(e.metadata["protocol"] == "a2a" for e in events)
    return sorted(e.metadata["action"] for e in events)


async def asking_agent(bus: BusClient, gateway: str, owner: Account, server: ScriptedModel,
                       *also: tuple[str, dict]) -> Published:
    """An agent whose model asks QUESTION (then makes the calls `also` in the same completion), then answers PLAN
    once it was told Lyon."""
    return await publish(bus, gateway, owner, server, {"tool_calls": [("ask_user", {"question": QUESTION}), *also]},
                         lambda body, _: {"text": PLAN if "Lyon" in json.dumps(body["messages"]) else "no city"},
                         tools=["ask_user"])


@pytest.mark.parametrize("binding", BINDINGS)
async def test_input_required_then_the_reply_resumes_the_same_run(bus: BusClient, gateway: str, owner: Account,
                                                                  model_server: ScriptedModel, binding: str) -> None:
    agent = await asking_agent(bus, gateway, owner, model_server)
    async with a2a_client(agent, binding) as client:
        task = await send(client, ask("Plan my trip to Paris"))
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert task.status.message.parts[0].text == QUESTION and task.status.message.role == Role.ROLE_AGENT
        run_id = task.metadata["runId"]
        again = await client.get_task(GetTaskRequest(id=task.id))
        assert again.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        waiting = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_INPUT_REQUIRED))
        assert [t.id for t in waiting.tasks] == [task.id]
        history = await bus.request(EXECUTION_LIST, {"agent": agent.slug}, owner.ctx)
        assert run_id not in {str(e.run_id) for e in history.executions}  # waiting is not finished

        done = await send(client, ask("Lyon", task_id=task.id, context_id=task.context_id))
        assert done.id == task.id and done.context_id == task.context_id
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
        assert done.artifacts[0].parts[0].text == PLAN and done.metadata["runId"] == run_id
        assert [m.role for m in done.history] == [Role.ROLE_USER, Role.ROLE_AGENT, Role.ROLE_USER, Role.ROLE_AGENT]
        assert done.history[1].parts[0].text == QUESTION
    assert agent.script.tool_results()[0]["content"] == json.dumps({"answer": "Lyon"})
    run = await bus.request(RUN_GET, {"id": run_id}, owner.ctx)
    assert run.status == "completed" and run.resumed == 0 and run.iterations == 2
    history = await bus.request(EXECUTION_LIST, {"agent": agent.slug}, owner.ctx)
    assert run_id in {str(e.run_id) for e in history.executions}
    assert await task_events(bus, owner, task.id, 4) == ["completed", "input_required", "received", "resumed"]


async def test_input_required_on_a_stream_and_a_reply_to_a_task_not_waiting(
        bus: BusClient, gateway: str, owner: Account, model_server: ScriptedModel) -> None:
    agent = await asking_agent(bus, gateway, owner, model_server, ("ask_user", {"question": "And when?"}))
    async with a2a_client(agent, streaming=True) as client:
        events = [event async for event in client.send_message(ask("Plan my trip"))]
        last = events[-1].status_update
        assert isinstance(last, TaskStatusUpdateEvent)
        assert last.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert last.status.message.parts[0].text == QUESTION
        task_id, context_id = last.task_id, last.context_id
        answered = [event async for event in client.send_message(ask("Lyon", task_id=task_id, context_id=context_id))]
        final = answered[-1].status_update
        assert final.status.state == TaskState.TASK_STATE_COMPLETED and final.task_id == task_id
        assert any(e.artifact_update.artifact.parts and e.artifact_update.artifact.parts[0].text == PLAN
                   for e in answered if e.HasField("artifact_update"))
    told = [json.loads(m["content"]) for m in agent.script.tool_results()]
    assert told[0] == {"answer": "Lyon"} and told[1]["error"]["code"] == "not_run"  # the second ask: never made
    async with a2a_client(agent) as client:
        with pytest.raises(Exception) as refused:  # noqa: PT011 - the SDK's UnsupportedOperation error class varies
            await send(client, ask("Lyon again", task_id=task_id))
        assert "not waiting" in str(refused.value)


async def test_auth_required_until_the_credentials_are_given(bus: BusClient, gateway: str, owner: Account,
                                                             stranger: Account, model_server: ScriptedModel) -> None:
    remote = await publish(bus, gateway, stranger, model_server, {"text": "Org B answers."})
    external = await bus.request(EXTERNAL_ADD, {"card_url": remote.base_url, "slug": unique("no-key")}, owner.ctx,
                                 timeout=30)
    tool = f"a2a__{external.slug}"
    agent = await publish(bus, gateway, owner, model_server, {"tool_calls": [(tool, {"task": "ask B"})]},
                          {"tool_calls": [(tool, {"task": "ask B again"})]}, {"text": "B said: Org B answers."},
                          delegates_to=[external.slug])
    async with a2a_client(agent, "HTTP+JSON") as client:
        task = await send(client, ask("What does org B say?"))
        assert task.status.state == TaskState.TASK_STATE_AUTH_REQUIRED
        assert task.status.message.metadata["code"] == "external_agent_auth_refused"
        assert task.status.message.metadata["tool"] == tool
        assert remote.script.requests == []  # org B's agent never ran without org B's key

        await bus.request(EXTERNAL_CREDENTIALS, {"slug": external.slug, "api_key": stranger.key}, owner.ctx)
        done = await send(client, ask("The key is in place now", task_id=task.id))
        assert done.status.state == TaskState.TASK_STATE_COMPLETED, done.status
        assert done.artifacts[0].parts[0].text == "B said: Org B answers."
    assert len(remote.script.requests) == 1
    assert await task_events(bus, owner, task.id, 4) == ["auth_required", "completed", "received", "resumed"]


async def test_rejected_for_an_input_mode_it_does_not_read(bus: BusClient, published: Published) -> None:
    image = Message(message_id=unique("m"), role=Role.ROLE_USER,
                    parts=[Part(url="https://example.test/cat.png", media_type="image/png")])
    async with a2a_client(published) as client:
        task = await send(client, SendMessageRequest(message=image))
        assert task.status.state == TaskState.TASK_STATE_REJECTED
        assert task.status.message.metadata["code"] == "unsupported_input_mode"
        assert "image/png" in task.status.message.parts[0].text
        fetched = await client.get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_REJECTED and not fetched.artifacts
        rejected = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_REJECTED))
        assert [t.id for t in rejected.tasks] == [task.id]
    assert published.script.requests == []
    assert await task_events(bus, published.account, task.id, 1) == ["rejected"]


async def test_rejected_when_the_quota_is_spent_and_inbound_task_events(bus: BusClient, published: Published,
                                                                         platform: Account) -> None:
    owner = published.account
    async with a2a_client(published) as client:
        first = await send(client, ask("Hello"))
        assert first.status.state == TaskState.TASK_STATE_COMPLETED
        await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 0}, platform.ctx)
        refused = await send(client, ask("Hello again"))
        assert refused.status.state == TaskState.TASK_STATE_REJECTED
        assert refused.status.message.metadata["code"] == "quota_exceeded"
    assert len(published.script.requests) == 1
    assert await task_events(bus, owner, first.id, 2) == ["completed", "received"]
    assert await task_events(bus, owner, refused.id, 1) == ["rejected"]


async def test_a_task_waiting_for_input_can_be_canceled(bus: BusClient, gateway: str, owner: Account,
                                                        model_server: ScriptedModel) -> None:
    agent = await asking_agent(bus, gateway, owner, model_server)
    async with a2a_client(agent, "HTTP+JSON") as client:
        task = await send(client, ask("Plan my trip"))
        assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        canceled = await client.cancel_task(CancelTaskRequest(id=task.id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        with pytest.raises(Exception) as refused:  # noqa: PT011 - the SDK's UnsupportedOperation error class varies
            await send(client, ask("Lyon", task_id=task.id))
        assert "not waiting" in str(refused.value)
    run = await bus.request(RUN_GET, {"id": task.metadata["runId"]}, owner.ctx)
    assert run.status == "failed" and len(agent.script.requests) == 1
    assert await task_events(bus, owner, task.id, 3) == ["canceled", "input_required", "received"]


async def test_push_tells_the_webhook_of_each_stop(bus: BusClient, gateway: str, owner: Account,
                                                   model_server: ScriptedModel) -> None:
    agent = await asking_agent(bus, gateway, owner, model_server)
    hook = Webhook()
    hook.url = f"{await hook.server.start()}/hook"
    try:
        request = ask("Plan my trip")
        request.configuration.task_push_notification_config.CopyFrom(
            TaskPushNotificationConfig(id="stops", url=hook.url, token="t0ken"))
        async with a2a_client(agent) as client:
            task = await send(client, request)
            assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
            await asyncio.wait_for(hook.arrived.wait(), 60)
            hook.arrived.clear()
            await send(client, ask("Lyon", task_id=task.id))
        await asyncio.wait_for(hook.arrived.wait(), 60)
    finally:
        await hook.server.stop()
    states = [json.loads(body)["task"]["status"]["state"] for _, body in hook.received]
    assert states == ["TASK_STATE_INPUT_REQUIRED", "TASK_STATE_COMPLETED"]


async def test_outside_an_a2a_task_ask_user_is_refused_to_the_model(bus: BusClient, owner: Account,
                                                                    model_server: ScriptedModel) -> None:
    model, script = model_server.script({"tool_calls": [("ask_user", {"question": QUESTION})]}, {"text": "A guess."})
    agent = await make_agent(bus, owner, model, tools=["ask_user"])
    reply = await bus.request(CHAT, {"slug": agent.slug, "message": "Plan my trip"}, owner.ctx, timeout=60)
    assert reply.run.status == "completed" and reply.run.answer == "A guess."  # nobody to ask: it did not wait
    assert json.loads(script.tool_results()[0]["content"])["error"]["code"] == "tool_forbidden"
