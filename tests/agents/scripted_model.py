"""A scripted model server speaking the OpenAI Chat Completions wire over real HTTP (uvicorn, a real port).

Each test registers a script under a model name of its own (`openai:<name>` in the agent's config); the
server answers that model's requests from the script, streamed (`stream: true`, SSE chunks the official
client reassembles) or not, and keeps every request it received, so a test can read what the platform
told the model (tool results included). A reply is `{"text": ...}`, `{"tool_calls": [(name, args), ...]}`,
or a function of (request body, call number) returning one of these; `gate` holds a call until released.
"""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.agents.local_server import LocalServer

Reply = dict[str, Any] | Callable[[dict[str, Any], int], dict[str, Any]]


@dataclass
class Script:
    replies: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)
    gates: dict[int, asyncio.Event] = field(default_factory=dict)  # call number (1-based) -> held until set
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def reply_for(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        reply = self.replies[min(number, len(self.replies)) - 1] if self.replies else {"text": "done"}
        return reply(body, number) if callable(reply) else reply

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool messages of the last request: what the platform reported for each call."""
        return [m for m in self.requests[-1]["messages"] if m["role"] == "tool"]


class ScriptedModel:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.url = ""
        app = Starlette(routes=[Route("/v1/chat/completions", self.complete, methods=["POST"])])
        self.server = LocalServer(app)

    def script(self, *replies: Reply) -> tuple[str, Script]:
        """A new script; returns the agent's model ref (`openai:<name>`) and the script."""
        name = f"scripted-{uuid4().hex[:10]}"
        self.scripts[name] = Script(list(replies))
        return f"openai:{name}", self.scripts[name]

    async def start(self) -> None:
        self.url = f"{await self.server.start()}/v1"

    async def stop(self) -> None:
        await self.server.stop()

    async def complete(self, request: Request) -> Response:
        body = await request.json()
        script = self.scripts.get(body["model"])
        if script is None:
            return JSONResponse({"error": {"message": f"no model {body['model']}", "type": "invalid_request_error"}},
                                status_code=404)
        script.requests.append(body)
        number = len(script.requests)
        script.arrived.set()
        if number in script.gates:
            await script.gates[number].wait()
        reply = script.reply_for(body, number)
        calls = [{"id": f"call_{number}_{i}", "type": "function",
                  "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                 for i, (name, args) in enumerate(reply.get("tool_calls", []))]
        usage = {"prompt_tokens": 10 * number, "completion_tokens": 5, "total_tokens": 10 * number + 5}
        if body.get("stream"):
            return StreamingResponse(_chunks(body["model"], reply.get("text"), calls, usage),
                                     media_type="text/event-stream")
        message = {"role": "assistant", "content": reply.get("text"), **({"tool_calls": calls} if calls else {})}
        return JSONResponse({
            "id": f"chatcmpl-{uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "usage": usage,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        })


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": choices, **({"usage": usage} if usage else {})}
    return f"data: {json.dumps(body)}\n\n"


async def _chunks(model: str, text: str | None, calls: list[dict[str, Any]], usage: dict[str, Any]):
    yield _chunk(model, {"role": "assistant"})
    for i, word in enumerate((text or "").split(" ") if text else []):
        yield _chunk(model, {"content": word if i == 0 else " " + word})
    for i, call in enumerate(calls):
        arguments = call["function"]["arguments"]
        yield _chunk(model, {"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]})
        half = len(arguments) // 2  # the arguments arrive in pieces, as real servers send them
        for part in (arguments[:half], arguments[half:]):
            yield _chunk(model, {"tool_calls": [{"index": i, "function": {"arguments": part}}]})
    yield _chunk(model, {}, "tool_calls" if calls else "stop")
    yield _chunk(model, {}, usage=usage)
    yield "data: [DONE]\n\n"
