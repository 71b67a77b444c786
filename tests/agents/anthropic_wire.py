"""A scripted server speaking Anthropic's Messages wire over real HTTP, for the anthropic provider's tests.

`POST /v1/messages` answers with the next prescribed `Reply` (a message of text and tool_use
blocks) or `Failure` (an error status and body, or an `error` event in the middle of a
stream), as JSON or, when the request says `"stream": true`, as the server-sent events the
API sends (message_start, ping, content_block_start/delta/stop with text_delta and
input_json_delta, message_delta, message_stop). Every request body and its headers are kept.
Like API version 2026-10-21, it refuses the sampling parameters the version removed.
"""

import json
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.gateway.server import GatewayState, serve

SAMPLING = {"temperature", "top_p", "top_k"}


@dataclass
class Reply:
    content: list[dict[str, Any]]  # {"type": "text", "text": ...} | {"type": "tool_use", "id", "name", "input"}
    stop_reason: str = "end_turn"
    input_tokens: int = 21
    output_tokens: int = 9
    model: str = "claude-scripted-1"


@dataclass
class Failure:
    status: int
    error_type: str
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    mid_stream: bool = False  # a 200 stream that starts, then sends an `error` event


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]


class ScriptedAnthropic:
    def __init__(self) -> None:
        self.script: deque[Reply | Failure] = deque()
        self.received: list[Received] = []
        self.url = ""

    def prescribe(self, *answers: Reply | Failure) -> None:
        """The answers to the next requests, in order; forgets earlier script and requests."""
        self.script = deque(answers)
        self.received = []

    async def messages(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(Received(body, dict(request.headers)))
        if removed := sorted(SAMPLING & set(body)):
            return error_response(
                Failure(400, "invalid_request_error", f"{removed[0]}: Extra inputs are not permitted")
            )
        if not self.script:
            return error_response(Failure(500, "api_error", "the test prescribed no answer for this request"))
        answer = self.script.popleft()
        if isinstance(answer, Failure) and not answer.mid_stream:
            return error_response(answer)
        if body.get("stream"):
            return StreamingResponse(sse(answer), media_type="text/event-stream")
        assert isinstance(answer, Reply)
        return JSONResponse(message(answer, answer.content, answer.stop_reason, answer.output_tokens))


def error_response(failure: Failure) -> Response:
    body = {"type": "error", "error": {"type": failure.error_type, "message": failure.message}}
    return JSONResponse(body, status_code=failure.status, headers=failure.headers)


def message(reply: Reply, content: list[dict[str, Any]], stop_reason: str | None, output_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": output_tokens},
    }


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"


async def sse(answer: Reply | Failure) -> AsyncIterator[str]:
    reply = answer if isinstance(answer, Reply) else Reply(content=[])
    yield event("message_start", {"message": message(reply, [], None, 1)})
    yield event("ping", {})
    if isinstance(answer, Failure):
        yield event("error", {"error": {"type": answer.error_type, "message": answer.message}})
        return
    for index, block in enumerate(reply.content):
        if block["type"] == "text":
            yield event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
            for piece in chunks(block["text"], 4):
                yield event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield event("content_block_start", {"index": index, "content_block": start})
            for piece in chunks(json.dumps(block["input"]), 7):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield event("content_block_delta", {"index": index, "delta": delta})
        yield event("content_block_stop", {"index": index})
    final = {
        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": reply.output_tokens},
    }
    yield event("message_delta", final)
    yield event("message_stop", {})


def chunks(text: str, size: int) -> Iterator[str]:
    return (text[i : i + size] for i in range(0, len(text), size))


async def start_scripted_anthropic() -> tuple[ScriptedAnthropic, GatewayState]:
    """The server on a free loopback port, served by uvicorn on this event loop."""
    scripted = ScriptedAnthropic()
    app = Starlette(routes=[Route("/v1/messages", scripted.messages, methods=["POST"])])
    state = await serve(app, "127.0.0.1", 0)
    scripted.url = state.url
    return scripted, state
