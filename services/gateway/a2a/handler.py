"""a2a-sdk's `RequestHandler` on the bus: each A2A operation is one `one.proto.a2a.*` request to the agents service.

The SDK's dispatchers (JSON-RPC, HTTP+JSON, their 0.3 adapters) parse and validate the wire and call this
handler with protobuf requests; it sends them as A2A JSON (the protobuf JSON mapping) with the caller's auth
(the EdgeBus: the spec's permission, rate rules, timeout) and turns the platform's errors into A2A's
(`TaskNotFoundError`, `TaskNotCancelableError`, ...). The SDK's `DefaultRequestHandler` is not used: it runs
the executor and keeps each task's queue in this process, and a task must outlive a gateway replica.
"""

from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler, validate_request_params
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils import errors as a2a_errors
from google.protobuf.json_format import MessageToDict, ParseDict

from services.gateway.a2a.auth import A2aCall, call_of
from services.gateway.a2a.stream import task_events, task_of
from services.gateway.routes_agui import StepFeed
from shared.contracts.a2a import (
    A2A_CANCEL,
    A2A_GET,
    A2A_LIST,
    A2A_PUSH_DELETE,
    A2A_PUSH_GET,
    A2A_PUSH_LIST,
    A2A_PUSH_SET,
    A2A_SEND,
    A2aTask,
)
from shared.contracts.agents import step_subject
from shared.kernel.envelope import MessageSpec, Protocol
from shared.kernel.errors import OneError
from shared.runtime.client import BusClient

SEND_TIMEOUT = 300.0
"""Seconds a blocking `SendMessage` waits for its run (the edge's usual timeout is for one bus round trip)."""

_BY_CODE: dict[str, type[a2a_errors.A2AError]] = {
    "a2a_task_not_found": a2a_errors.TaskNotFoundError,
    "a2a_task_not_cancelable": a2a_errors.TaskNotCancelableError,
    "a2a_task_terminal": a2a_errors.UnsupportedOperationError,
}
_BY_FAMILY: dict[str, type[a2a_errors.A2AError]] = {
    "invalid": a2a_errors.InvalidParamsError, "not_found": a2a_errors.InvalidParamsError,
    "conflict": a2a_errors.InvalidRequestError, "forbidden": a2a_errors.InvalidRequestError,
    "quota_exceeded": a2a_errors.InvalidRequestError, "rate_limited": a2a_errors.InvalidRequestError,
}


def a2a_error(error: OneError) -> a2a_errors.A2AError:
    """The A2A error a client understands, with the platform's code and details in its data."""
    kind = _BY_CODE.get(error.code) or _BY_FAMILY.get(error.family()) or a2a_errors.InternalError
    return kind(error.message, {"code": error.code, **error.details})


def _json(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=False)


class BusRequestHandler(RequestHandler):
    def __init__(self, bus: BusClient) -> None:
        self.bus = bus

    async def _ask(self, spec: MessageSpec[Any, Any], call: A2aCall, payload: dict[str, Any], **options: Any) -> Any:
        try:
            return await self.bus.request(spec, {"agent": call.agent, **payload}, call.auth, protocol=Protocol.A2A,
                                          **options)
        except OneError as error:
            raise a2a_error(error) from None

    async def _send(self, params: SendMessageRequest, call: A2aCall, *, immediately: bool) -> A2aTask:
        config = params.configuration
        message = _json(params.message)
        payload: dict[str, Any] = {
            "message": message, "return_immediately": immediately,
            "caller": {"key_id": call.key_id, "card_url": (message.get("metadata") or {}).get("agentCardUrl")},
        }
        if config.HasField("history_length"):
            payload["history_length"] = config.history_length
        if config.HasField("task_push_notification_config"):
            push = _json(config.task_push_notification_config)
            payload["push"] = {k: push[k] for k in ("id", "url", "token", "authentication") if k in push}
        return await self._ask(A2A_SEND, call, payload, timeout=SEND_TIMEOUT)

    @validate_request_params
    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Task | Message:
        call = call_of(context)
        return task_of(await self._send(params, call, immediately=params.configuration.return_immediately))

    @validate_request_params
    async def on_message_send_stream(self, params: SendMessageRequest,
                                     context: ServerCallContext) -> AsyncGenerator[Any, None]:
        call = call_of(context)
        feed = await StepFeed.open(self.bus, step_subject(call.auth.org_id, "*"))  # before the run starts
        try:
            started = await self._send(params, call, immediately=True)
        except BaseException:
            await feed.close()
            raise
        async for event in task_events(self.bus, call, started, feed):
            yield event

    @validate_request_params
    async def on_subscribe_to_task(self, params: SubscribeToTaskRequest,
                                   context: ServerCallContext) -> AsyncGenerator[Any, None]:
        call = call_of(context)
        feed = await StepFeed.open(self.bus, step_subject(call.auth.org_id, "*"))  # before the task is read
        try:
            now: A2aTask = await self._ask(A2A_GET, call, {"id": params.id})
            if now.final:
                state = TaskState.Name(task_of(now).status.state)
                raise a2a_errors.UnsupportedOperationError(f"task {params.id} has ended ({state})")
        except BaseException:
            await feed.close()
            raise
        async for event in task_events(self.bus, call, now, feed):
            yield event

    @validate_request_params
    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        payload: dict[str, Any] = {"id": params.id}
        if params.HasField("history_length"):
            payload["history_length"] = params.history_length
        return task_of(await self._ask(A2A_GET, call_of(context), payload))

    @validate_request_params
    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        payload: dict[str, Any] = {"include_artifacts": params.include_artifacts}
        if params.context_id:
            payload["context_id"] = params.context_id
        if params.status:
            payload["state"] = TaskState.Name(params.status)
        if params.HasField("page_size"):
            payload["page_size"] = params.page_size
        if params.page_token:
            payload["page_token"] = params.page_token
        if params.HasField("history_length"):
            payload["history_length"] = params.history_length
        page = await self._ask(A2A_LIST, call_of(context), payload)
        return ListTasksResponse(tasks=[ParseDict(t, Task(), ignore_unknown_fields=True) for t in page.tasks],
                                 next_page_token=page.next_page_token, page_size=page.page_size,
                                 total_size=page.total_size)

    @validate_request_params
    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task | None:
        return task_of(await self._ask(A2A_CANCEL, call_of(context), {"id": params.id}))

    @validate_request_params
    async def on_create_task_push_notification_config(
            self, params: TaskPushNotificationConfig, context: ServerCallContext) -> TaskPushNotificationConfig:
        config = _json(params)
        body = {k: config[k] for k in ("id", "url", "token", "authentication") if k in config}
        record = await self._ask(A2A_PUSH_SET, call_of(context), {"task_id": params.task_id, "config": body})
        return ParseDict(record.config, TaskPushNotificationConfig())

    @validate_request_params
    async def on_get_task_push_notification_config(
            self, params: GetTaskPushNotificationConfigRequest,
            context: ServerCallContext) -> TaskPushNotificationConfig:
        record = await self._ask(A2A_PUSH_GET, call_of(context), {"task_id": params.task_id, "id": params.id})
        return ParseDict(record.config, TaskPushNotificationConfig())

    @validate_request_params
    async def on_list_task_push_notification_configs(
            self, params: ListTaskPushNotificationConfigsRequest,
            context: ServerCallContext) -> ListTaskPushNotificationConfigsResponse:
        found = await self._ask(A2A_PUSH_LIST, call_of(context), {"task_id": params.task_id})
        return ListTaskPushNotificationConfigsResponse(
            configs=[ParseDict(c, TaskPushNotificationConfig()) for c in found.configs])

    @validate_request_params
    async def on_delete_task_push_notification_config(
            self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext) -> None:
        await self._ask(A2A_PUSH_DELETE, call_of(context), {"task_id": params.task_id, "id": params.id})

    async def on_get_extended_agent_card(self, params: GetExtendedAgentCardRequest,
                                         context: ServerCallContext) -> AgentCard:
        raise a2a_errors.ExtendedAgentCardNotConfiguredError("the public card is the whole card")
