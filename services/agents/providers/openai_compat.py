"""The OpenAI-compatible Chat Completions wire (OpenAI, vLLM, Ollama, llama.cpp server, any proxy).

Through the official `openai` client (`AsyncOpenAI`), with the base URL and key from the settings, so
pointing agents at another server is a setting. Tool calls go out as `tools` (type `function`) and come
back as `tool_calls` whose arguments are a JSON string; a string that is not a JSON object is handed to
the tool loop as `{"_unparsed": <text>}`, which the tool's argument check then refuses and reports to the
model. With `on_text`, the answer is streamed (`stream=True`, usage asked for in the last chunk) and the
deltas of text and of tool-call arguments are put back together here.
"""

import json
from collections.abc import Sequence
from typing import Any

import openai

from services.agents.providers.base import ChatMessage, Completion, TextSink, ToolCall, ToolSpec, Usage
from services.agents.settings import AgentsSettings
from shared.contracts.agents import ModelUnavailable
from shared.kernel.errors import InvalidRequest


def wire_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Our messages in the Chat Completions shape."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["tool_calls"] = [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}
                for call in message.tool_calls
            ]
        if message.role == "tool":
            item["tool_call_id"] = message.tool_call_id
        wire.append(item)
    return wire


def wire_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]


def decode_arguments(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_unparsed": raw[:2000]}
    return value if isinstance(value, dict) else {"_unparsed": raw[:2000]}


class OpenAICompatProvider:
    name = "openai"
    supports_tools = True

    def __init__(self, settings: AgentsSettings) -> None:
        key = settings.agents_openai_api_key.get_secret_value() if settings.agents_openai_api_key else "unset"
        self.client = openai.AsyncOpenAI(base_url=settings.agents_openai_base_url, api_key=key,
                                         timeout=settings.agents_openai_timeout, max_retries=1)

    async def complete(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.2,
        max_tokens: int = 512,
        on_text: TextSink | None = None,
    ) -> Completion:
        request: dict[str, Any] = {"model": model, "messages": wire_messages(messages), "temperature": temperature,
                                   "max_tokens": max_tokens}
        if tools:
            request["tools"] = wire_tools(tools)
        try:
            if on_text is None:
                return self._completion(await self.client.chat.completions.create(**request))
            stream = await self.client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True})
            return await self._streamed(stream, model, on_text)
        except openai.BadRequestError as error:
            raise InvalidRequest(f"the model refused the request: {error.message}",
                                 {"provider": self.name, "status": error.status_code}) from None
        except openai.APIStatusError as error:
            raise ModelUnavailable(f"the model answered {error.status_code}: {error.message}",
                              {"provider": self.name, "status": error.status_code}) from None
        except openai.APIError as error:  # connection errors, timeouts
            raise ModelUnavailable(f"the model could not be reached: {type(error).__name__}",
                              {"provider": self.name}) from None

    def _completion(self, response: Any) -> Completion:
        choice = response.choices[0]
        calls = tuple(ToolCall(call.id, call.function.name, decode_arguments(call.function.arguments))
                      for call in choice.message.tool_calls or ())
        usage = response.usage
        return Completion(
            text=choice.message.content or "", tool_calls=calls, model=f"{self.name}:{response.model}",
            usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
            finish_reason=choice.finish_reason or ("tool_calls" if calls else "stop"),
        )

    async def _streamed(self, stream: Any, model: str, on_text: TextSink) -> Completion:
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage, finish, answered_by = Usage(), "stop", model
        async for chunk in stream:
            answered_by = chunk.model or answered_by
            if chunk.usage:
                usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    await on_text(delta.content)
                for part in delta.tool_calls or ():
                    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = part.id or call["id"]
                    if part.function:
                        call["name"] += part.function.name or ""
                        call["arguments"] += part.function.arguments or ""
                finish = choice.finish_reason or finish
        tool_calls = tuple(ToolCall(c["id"] or f"call_{i}", c["name"], decode_arguments(c["arguments"]))
                           for i, c in sorted(calls.items()))
        return Completion(text="".join(text), tool_calls=tool_calls, usage=usage, model=f"{self.name}:{answered_by}",
                          finish_reason=finish)


def create(settings: AgentsSettings) -> OpenAICompatProvider:
    return OpenAICompatProvider(settings)
