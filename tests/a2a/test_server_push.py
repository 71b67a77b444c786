"""Push notifications of a published agent's tasks: the config's CRUD with the official client, and the final task
delivered to a real local webhook, signed with the client's token, and retried when the webhook fails."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from a2a.types.a2a_pb2 import (
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    ListTaskPushNotificationConfigsRequest,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import TaskNotFoundError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.contracts.a2a import PUSH_SIGNATURE_HEADER, PUSH_TOKEN_HEADER
from tests.a2a.conftest import ANSWER, Published, a2a_client
from tests.a2a.test_server_tasks import ask, send
from tests.agents.local_server import LocalServer

TOKEN = "client-chosen-token-7f3a"


class Webhook:
    """A real local HTTP endpoint that keeps what it received; it refuses the first `fail` deliveries."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.received, self.arrived = fail, list[tuple[dict[str, str], bytes]](), asyncio.Event()
        self.server = LocalServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))
        self.url = ""

    async def hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        if len(self.received) <= self.fail:
            return Response(status_code=503)
        self.arrived.set()
        return Response(status_code=204)


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook(fail=1)
    hook.url = f"{await hook.server.start()}/hook"
    yield hook
    await hook.server.stop()


def signed(headers: dict[str, str], body: bytes, secret: str) -> bool:
    fields = dict(part.split("=", 1) for part in headers[PUSH_SIGNATURE_HEADER.lower()].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


async def test_push_is_delivered_signed_and_retried(published: Published, webhook: Webhook) -> None:
    request = ask("Tell my webhook")
    request.configuration.task_push_notification_config.CopyFrom(
        TaskPushNotificationConfig(id="hook-1", url=webhook.url, token=TOKEN))
    async with a2a_client(published) as client:
        task = await send(client, request)
    await asyncio.wait_for(webhook.arrived.wait(), 60)
    assert len(webhook.received) == 2  # the first delivery was refused (503) and retried by the durable job
    headers, body = webhook.received[-1]
    assert headers[PUSH_TOKEN_HEADER.lower()] == TOKEN and signed(headers, body, TOKEN)
    assert not signed(headers, body.replace(b"Forty-two", b"Fifty-two"), TOKEN)  # a changed body fails
    pushed: dict[str, Any] = json.loads(body)["task"]
    assert pushed["id"] == task.id and pushed["status"]["state"] == "TASK_STATE_COMPLETED"
    assert pushed["artifacts"][0]["parts"][0]["text"] == ANSWER


async def test_push_config_crud(published: Published, webhook: Webhook) -> None:
    async with a2a_client(published, "HTTP+JSON") as client:
        task = await send(client, ask("Hello"))
        made = await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task.id, id="later", url=webhook.url, token=TOKEN))
        assert (made.id, made.task_id, made.url) == ("later", task.id, webhook.url)
        got = await client.get_task_push_notification_config(GetTaskPushNotificationConfigRequest(
            task_id=task.id, id="later"))
        assert got.url == webhook.url and got.token == TOKEN
        listed = await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(
            task_id=task.id))
        assert [c.id for c in listed.configs] == ["later"]
        await asyncio.wait_for(webhook.arrived.wait(), 60)  # set after the task ended: told at once (after a retry)
        await client.delete_task_push_notification_config(DeleteTaskPushNotificationConfigRequest(
            task_id=task.id, id="later"))
        assert not (await client.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(
            task_id=task.id))).configs
        with pytest.raises(TaskNotFoundError):
            await client.get_task_push_notification_config(GetTaskPushNotificationConfigRequest(
                task_id=task.id, id="later"))
