"""The A2A client side, on the official a2a-sdk (1.3, A2A v1.0): resolve an agent card, send a task, get its answer.

Everything the remote can do wrong becomes one of the contract's typed errors, so a delegating run reports it
to its model as a tool error and never crashes: unreachable (network, 5xx, timeout) → `ExternalAgentUnreachable`;
401/403 or a task that asks for authentication → `ExternalAgentAuthRefused`; a card we cannot use →
`AgentCardInvalid`; a task that ends failed / rejected / canceled / input-required, or a protocol error →
`ExternalTaskFailed`; a card URL that does not answer with a card → `AgentCardUnreachable` (the caller's URL
to fix, not an outage of ours). A task is streamed when the card says the remote streams (SSE), otherwise sent
and, when the reply is not final yet, polled with `GetTask`. The credential goes where the card's security scheme says
(the SDK's `AuthInterceptor`: `Authorization: Bearer`, or the API-key header the card names).
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import httpx
from a2a.client import A2ACardResolver, AuthInterceptor, ClientConfig, ClientFactory, CredentialService
from a2a.client.errors import A2AClientTimeoutError, AgentCardResolutionError
from a2a.helpers import get_message_text, get_text_parts, new_text_part
from a2a.types.a2a_pb2 import (
    AgentCard,
    GetTaskRequest,
    Message,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, TransportProtocol
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from shared.contracts.agents.external import (
    AgentCardInvalid,
    AgentCardUnreachable,
    ExternalAgentAuthRefused,
    ExternalAgentUnreachable,
    ExternalTaskFailed,
)

CARD_TIMEOUT = 10.0
POLL_INTERVAL = 0.5
BINDINGS = [TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON]
"""The bindings we speak (gRPC needs the SDK's grpc extra): a card must offer one of them."""
_DONE = {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED,
         TaskState.TASK_STATE_REJECTED, TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}


def state_name(state: int) -> str:
    """`TASK_STATE_INPUT_REQUIRED` → `input-required` (the protocol's words)."""
    return TaskState.Name(state).removeprefix("TASK_STATE_").lower().replace("_", "-")


def _card_location(url: str) -> tuple[str, str]:
    """(base URL, card path) for the resolver: a URL ending in `.json` is the card itself, else its base."""
    if url.rstrip("/").endswith(".json"):
        return url, "/"
    return url.rstrip("/"), AGENT_CARD_WELL_KNOWN_PATH


def _http_status(error: BaseException) -> int | None:
    """The HTTP status somewhere in the error's chain (the SDK wraps httpx's errors)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, httpx.HTTPStatusError):
            return seen.response.status_code
        seen = seen.__cause__ or seen.__context__
    return None


def _typed(error: Exception, what: str) -> Exception:
    """The contract's error for whatever the SDK or the network raised while doing `what`."""
    status = getattr(error, "status_code", None) or _http_status(error)
    detail = {"status": status} if status else {}
    if status in (401, 403):
        return ExternalAgentAuthRefused(f"the remote agent refused our credentials ({status}) while {what}", detail)
    if isinstance(error, A2AClientTimeoutError | TimeoutError):
        return ExternalAgentUnreachable(f"the remote agent did not answer in time while {what}")
    if isinstance(error, A2AError) and not (status or isinstance(error.__cause__, httpx.HTTPError)):
        return ExternalTaskFailed(f"the remote agent answered with an error while {what}: {error}"[:1000],
                                  {"a2a_error": type(error).__name__})
    if isinstance(error, A2AError | httpx.HTTPError):
        return ExternalAgentUnreachable(f"the remote agent could not be reached while {what}: {error}"[:1000], detail)
    return ExternalTaskFailed(f"the remote agent's answer could not be read while {what}: "
                              f"{type(error).__name__}: {error}"[:1000])


def check_card(card: AgentCard) -> None:
    """Refuse a card we cannot delegate to: no name, or no JSON-RPC / HTTP+JSON interface with an http(s) URL."""
    if not card.name.strip():
        raise AgentCardInvalid("the agent card has no name")
    usable = [i for i in card.supported_interfaces if i.protocol_binding in BINDINGS and
              i.url.startswith(("http://", "https://"))]
    if not usable:
        raise AgentCardInvalid("the agent card offers no JSON-RPC or HTTP+JSON interface with an http(s) URL", {
            "interfaces": [{"url": i.url, "binding": i.protocol_binding} for i in card.supported_interfaces]})


async def resolve_card(url: str, timeout: float = CARD_TIMEOUT) -> dict[str, Any]:
    """Fetch the card at `url` (a base URL or the card's own), validate it; its A2A JSON form."""
    base, path = _card_location(url)
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as http:
            card = await A2ACardResolver(http, base, path).get_agent_card(relative_card_path=path)
    except AgentCardResolutionError as error:
        if error.status_code == 404:
            raise AgentCardInvalid(f"there is no agent card at {url} (404)") from None
        if error.status_code is None and isinstance(error.__cause__, ValueError | ParseError):
            raise AgentCardInvalid(f"what {url} answered is not an agent card: {error.message}"[:1000]) from None
        raise AgentCardUnreachable(f"the card could not be fetched: {error.message}"[:1000],
                                   {"status": error.status_code} if error.status_code else {}) from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:  # also a URL httpx cannot even send to
        raise AgentCardUnreachable(f"the card could not be fetched: {type(error).__name__}: {error}"[:1000]) from None
    check_card(card)
    return MessageToDict(card)


def parse_card(card: dict[str, Any]) -> AgentCard:
    return ParseDict(card, AgentCard(), ignore_unknown_fields=True)


class _StoredCredential(CredentialService):
    """The one credential stored for the remote, for whichever scheme its card asks for."""

    def __init__(self, credential: str | None) -> None:
        self.credential = credential

    async def get_credentials(self, security_scheme_name: str, context: Any) -> str | None:
        return self.credential


@dataclass
class Exchange:
    """What came back: the remote task (if it made one), its final state and the answer's text."""

    state: str = "submitted"
    task_id: str | None = None
    context_id: str | None = None
    answer: str = ""
    status_text: str = ""
    streamed: bool = False
    artifacts: dict[str, list[str]] = field(default_factory=dict)

    def take_task(self, task: Task) -> None:
        self.task_id, self.context_id = task.id or None, task.context_id or None
        self.state = state_name(task.status.state)
        self.artifacts = {a.artifact_id: get_text_parts(a.parts) for a in task.artifacts}
        if task.status.HasField("message"):
            self.status_text = get_message_text(task.status.message)

    def take(self, event: StreamResponse) -> None:
        if event.HasField("task"):
            self.take_task(event.task)
        elif event.HasField("message"):
            self.answer, self.state = get_message_text(event.message), "completed"
            self.context_id = event.message.context_id or self.context_id
        elif event.HasField("status_update"):
            self.task_id = event.status_update.task_id or self.task_id
            self.state = state_name(event.status_update.status.state)
            if event.status_update.status.HasField("message"):
                self.status_text = get_message_text(event.status_update.status.message)
        elif event.HasField("artifact_update"):
            update = event.artifact_update
            parts = self.artifacts.setdefault(update.artifact.artifact_id, [])
            if not update.append:
                parts.clear()
            parts += get_text_parts(update.artifact.parts)

    @property
    def done(self) -> bool:
        return self.state in {state_name(s) for s in _DONE}

    def text(self) -> str:
        """The artifacts' text (an artifact's parts are the chunks of one text), else the reply or status message."""
        found = "\n".join(t for t in ("".join(parts) for parts in self.artifacts.values()) if t)
        return found or self.answer or self.status_text


async def send_task(card_json: dict[str, Any], credential: str | None, text: str, timeout: float, *,
                    task_id: str | None = None, context_id: str | None = None) -> Exchange:
    """Send `text` (a new task, or in the remote's `task_id` / `context_id`: an answer to its question, a next
    turn) and wait (at most `timeout` s) for the task's end; `ExternalTaskFailed` unless completed."""
    card = parse_card(card_json)
    exchange = Exchange(streamed=card.capabilities.streaming)
    request = SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=str(uuid4()), task_id=task_id,
                                                 context_id=context_id, parts=[new_text_part(text)]))
    try:
        async with httpx.AsyncClient(timeout=timeout) as http, asyncio.timeout(timeout):
            config = ClientConfig(httpx_client=http, streaming=card.capabilities.streaming,
                                  supported_protocol_bindings=list(BINDINGS))
            try:
                client = ClientFactory(config).create(card, [AuthInterceptor(_StoredCredential(credential))])
            except ValueError as error:
                raise AgentCardInvalid(f"no interface of the card can be used: {error}") from None
            async for event in client.send_message(request):
                exchange.take(event)
            while not exchange.done and exchange.task_id:
                await asyncio.sleep(POLL_INTERVAL)
                exchange.take_task(await client.get_task(GetTaskRequest(id=exchange.task_id)))
    except AgentCardInvalid:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the remote or the SDK raised, the model gets a typed error
        raise _typed(error, "running the task") from None
    return _finished(exchange)


def _finished(exchange: Exchange) -> Exchange:
    details = {"state": exchange.state, "task_id": exchange.task_id, "context_id": exchange.context_id,
               "remote_message": exchange.text()[:2000]}
    if exchange.state == "completed":
        return exchange
    if exchange.state == "auth-required":
        raise ExternalAgentAuthRefused("the remote task asks for authentication we cannot give", details)
    raise ExternalTaskFailed(f"the remote task ended {exchange.state}", details)
