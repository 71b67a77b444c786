"""Every published agent is an A2A v1.0 server: the official a2a-sdk client, over real HTTP, on both bindings,
against the session's gateway and agents service (tasks are runs; the scripted model answers at once)."""

import asyncio
import uuid

import httpx
import pytest
from a2a.helpers import new_text_message
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError
from a2a.utils.proto_utils import validate_proto_required_fields

from shared.contracts.agents import AGENT_GET
from shared.contracts.eventlog import QUERY
from shared.contracts.graph import CONNECTION_QUERY, THING_GET
from shared.contracts.tenancy import KEY_CREATE
from shared.runtime.client import BusClient
from tests.a2a.conftest import ANSWER, Published, a2a_client, fetch_card, publish
from tests.agents.agent_fixtures import wait_events
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account, add_member

BINDINGS = ["JSONRPC", "HTTP+JSON"]


def ask(text: str, *, context_id: str = "", immediately: bool = False) -> SendMessageRequest:
    message = new_text_message(text, role=Role.ROLE_USER, context_id=context_id or None)
    return SendMessageRequest(message=message, configuration=SendMessageConfiguration(return_immediately=immediately))


async def send(client, request: SendMessageRequest):  # noqa: ANN001, ANN201 - the SDK's own types
    events = [event async for event in client.send_message(request)]
    assert events, "the server answered nothing"
    return events[-1].task


async def test_card_is_public_complete_and_names_both_bindings(published: Published) -> None:
    card = await fetch_card(published)
    validate_proto_required_fields(card)  # raises on any field A2A v1.0 requires and the card lacks
    assert card.name and card.description and card.version == "1"
    assert {(i.protocol_binding, i.protocol_version, i.url) for i in card.supported_interfaces} == {
        ("JSONRPC", "1.0", published.base_url), ("HTTP+JSON", "1.0", published.base_url)}
    assert card.capabilities.streaming and card.capabilities.push_notifications
    assert card.provider.organization == "ONE on a bus"
    assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
    assert card.security_schemes["apiKey"].api_key_security_scheme.name == "X-API-Key"
    assert [s.id for s in card.skills] and all(s.name and s.description and list(s.tags) for s in card.skills)
    assert list(card.default_input_modes) and list(card.default_output_modes)


async def test_card_skills_come_from_tools(bus: BusClient, gateway: str, owner: Account,
                                           model_server: ScriptedModel) -> None:
    agent = await publish(bus, gateway, owner, model_server, tools=["thing_get", "knowledge_search"])
    skills = {s.id: s for s in (await fetch_card(agent)).skills}
    assert set(skills) == {"tool:thing_get", "tool:knowledge_search"}
    assert "tool" in skills["tool:thing_get"].tags


async def test_no_card_for_an_agent_never_deployed_or_unknown(bus: BusClient, gateway: str, owner: Account,
                                                              model_server: ScriptedModel) -> None:
    agent = await publish(bus, gateway, owner, model_server, deploy=False)
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(agent.card_url)).status_code == 404
        assert (await http.get(agent.card_url.replace(agent.slug, "nobody-here"))).status_code == 404
        assert (await http.get(f"{gateway}/a2a/not-an-org/x/.well-known/agent-card.json")).status_code == 404


@pytest.mark.parametrize("binding", BINDINGS)
async def test_send_get_list(published: Published, binding: str) -> None:
    async with a2a_client(published, binding) as client:
        task = await send(client, ask("What is the answer?"))
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert task.artifacts[0].parts[0].text == ANSWER
        assert [m.role for m in task.history] == [Role.ROLE_USER, Role.ROLE_AGENT]
        again = await client.get_task(GetTaskRequest(id=task.id))
        assert again.id == task.id and again.context_id == task.context_id
        assert again.status.state == TaskState.TASK_STATE_COMPLETED
        assert again.artifacts[0].parts[0].text == ANSWER
        # the same contextId goes on in the same conversation: a second task of one context
        second = await send(client, ask("And again?", context_id=task.context_id))
        assert second.context_id == task.context_id and second.id != task.id
        page = await client.list_tasks(ListTasksRequest(context_id=task.context_id, page_size=1))
        assert page.total_size == 2 and [t.id for t in page.tasks] == [second.id]
        rest = await client.list_tasks(ListTasksRequest(context_id=task.context_id, page_token=page.next_page_token))
        assert [t.id for t in rest.tasks] == [task.id] and not rest.next_page_token
        done = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_COMPLETED))
        assert {task.id, second.id} <= {t.id for t in done.tasks}


@pytest.mark.parametrize("binding", BINDINGS)
async def test_unknown_task_is_task_not_found(published: Published, binding: str) -> None:
    async with a2a_client(published, binding) as client:
        for unknown in (str(uuid.uuid4()), "not-a-task-id"):
            with pytest.raises(TaskNotFoundError):
                await client.get_task(GetTaskRequest(id=unknown))
            with pytest.raises(TaskNotFoundError):
                await client.cancel_task(CancelTaskRequest(id=unknown))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_return_immediately_then_cancel(bus: BusClient, gateway: str, owner: Account,
                                              model_server: ScriptedModel, binding: str) -> None:
    agent = await publish(bus, gateway, owner, model_server)
    agent.script.gates[1] = asyncio.Event()  # the model holds its first answer: the run stays working
    async with a2a_client(agent, binding) as client:
        task = await send(client, ask("Take your time", immediately=True))
        assert task.status.state in (TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_SUBMITTED)
        canceled = await client.cancel_task(CancelTaskRequest(id=task.id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED
        agent.script.gates[1].set()
        await asyncio.sleep(0.3)
        after = await client.get_task(GetTaskRequest(id=task.id))
        assert after.status.state == TaskState.TASK_STATE_CANCELED and not after.artifacts
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(CancelTaskRequest(id=task.id))
    events = await wait_events(bus, owner, ["task_event"], 2, metadata={"taskId": task.id})
    assert {e.metadata["action"] for e in events} == {"received", "canceled"}
    assert all(e.metadata["protocol"] == "a2a" for e in events)


async def test_no_key_is_401_and_another_orgs_key_is_refused(published: Published, stranger: Account) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": str(uuid.uuid4())}}
    async with httpx.AsyncClient(timeout=30, headers={"A2A-Version": "1.0"}) as http:
        for url in (published.base_url, f"{published.base_url}/tasks/{uuid.uuid4()}"):
            refused = await (http.post(url, json=body) if url == published.base_url else http.get(url))
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        other = await http.post(published.base_url, json=body, headers=published.headers(stranger.key))
        assert other.status_code == 403
        assert (await http.get(published.card_url)).status_code == 200


async def test_v03_message_send_is_answered(published: Published) -> None:
    body = {"jsonrpc": "2.0", "id": "old-1", "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": str(uuid.uuid4()), "role": "user",
        "parts": [{"kind": "text", "text": "Hello from 0.3"}]}}}
    async with httpx.AsyncClient(timeout=60, headers=published.headers()) as http:
        answer = (await http.post(published.base_url, json=body)).json()
    assert answer["id"] == "old-1" and "error" not in answer, answer
    result = answer["result"]
    assert result["kind"] == "task" and result["status"]["state"] == "completed"
    assert result["artifacts"][0]["parts"][0]["text"] == ANSWER


async def test_the_exchange_is_in_the_ontology(bus: BusClient, published: Published) -> None:
    async with a2a_client(published) as client:
        task = await send(client, ask("Who am I?"))
        await send(client, ask("Still me", context_id=task.context_id))
    owner = published.account
    events = await wait_events(bus, owner, ["communication_event"], 2, protocols=["a2a"])
    assert all(e.metadata["protocol"] == "a2a" and e.metadata["direction"] == "inbound" for e in events)
    page = await bus.request(QUERY, {"types": ["task_event"], "protocols": ["a2a"], "limit": 10}, owner.ctx)
    assert {e.metadata["taskId"] for e in page.events} >= {task.id}
    agent = await bus.request(AGENT_GET, {"slug": published.slug}, owner.ctx)
    for _ in range(100):  # the caller is recorded off the reply's path
        links = (await bus.request(CONNECTION_QUERY, {"thing_id": str(agent.id), "direction": "in",
                                                      "types": ["communicated"]}, owner.ctx)).connections
        if links and links[0].metadata.get("messageCount") == 2:
            break
        await asyncio.sleep(0.1)
    assert len(links) == 1 and links[0].metadata["messageCount"] == 2 and links[0].metadata["protocol"] == "a2a"
    caller = await bus.request(THING_GET, {"id": str(links[0].from_id)}, owner.ctx)
    assert caller.thing.type == "external_agent" and caller.thing.properties["protocol"] == "a2a"


async def test_a_customer_key_and_a_key_scoped_to_a2a_may_talk(bus: BusClient, published: Published) -> None:
    owner = published.account
    customer = await add_member(bus, owner, role="customer")
    scoped = await bus.request(KEY_CREATE, {"name": "partner", "scopes": ["a2a:*"]}, owner.ctx)
    for key in (customer.key, scoped.key):
        async with a2a_client(published, key=key) as client:
            task = await send(client, ask("Hello from a partner"))
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
            assert (await client.get_task(GetTaskRequest(id=task.id))).id == task.id
    async with httpx.AsyncClient(timeout=30, headers=published.headers(scoped.key)) as http:
        assert (await http.get(published.base_url.split("/a2a/")[0] + "/v1/things")).status_code == 403
