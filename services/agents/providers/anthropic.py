"""Anthropic's Messages API through the official `anthropic` client (AsyncAnthropic; base URL and key from settings).

The run's messages map onto Messages: system messages become the `system` prompt, an
assistant's tool calls become `tool_use` blocks and tool results `tool_result` blocks in a
user turn, consecutive turns of one role are merged (the API wants them alternating). Text is
streamed through `on_text` when a sink is given (the SDK's `messages.stream`), else one
`messages.create`. The SDK retries connection errors, 429 and 5xx itself (`max_retries` is a
setting); what is left becomes a typed platform error: the provider unreachable, failing or
refusing the platform's key is `Unavailable` (the caller can do nothing about it), a 429 is
`RateLimited` with its `retry_after`, a request the API finds invalid is `InvalidRequest`.

`temperature` is not sent: API version 2026-10-21 (the one the 2.x client speaks) removed the
sampling parameters and answers 400 to any of them, so an agent's temperature applies to the
other providers only.
"""

from collections.abc import Sequence
from typing import Any

import anthropic

from services.agents.providers.base import ChatMessage, Completion, TextSink, ToolCall, ToolSpec, Usage
from services.agents.settings import AgentsSettings
from shared.contracts.agents import ModelUnavailable
from shared.kernel.errors import InvalidRequest, OneError, RateLimited

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}
INVALID_TYPES = {"invalid_request_error", "not_found_error", "request_too_large"}


def as_messages(messages: Sequence[ChatMessage]) -> tuple[str | None, list[dict[str, Any]]]:
    """The `system` prompt and the alternating user/assistant turns of a run's messages."""
    system = [m.content for m in messages if m.role == "system" and m.content]
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = content_blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return ("\n\n".join(system) or None), turns


def content_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise InvalidRequest(
                "a tool result names no tool call", details={"provider": "anthropic", "tool": message.name}
            )
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content or ""}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in message.tool_calls]
    return blocks


def as_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def as_completion(message: Any) -> Completion:
    """The SDK's `Message` as the interface's `Completion`; cached input tokens count as input."""
    text = "".join(block.text for block in message.content if block.type == "text")
    calls = tuple(
        ToolCall(block.id, block.name, dict(block.input or {})) for block in message.content if block.type == "tool_use"
    )
    usage = message.usage
    cached = (getattr(usage, "cache_creation_input_tokens", None) or 0) + (
        getattr(usage, "cache_read_input_tokens", None) or 0
    )
    return Completion(
        text=text,
        tool_calls=calls,
        usage=Usage(input_tokens=usage.input_tokens + cached, output_tokens=usage.output_tokens),
        model=f"anthropic:{message.model}",
        finish_reason=FINISH_REASONS.get(message.stop_reason or "end_turn", message.stop_reason),
    )


def as_platform_error(exc: anthropic.AnthropicError) -> OneError:
    """The typed platform error for what the SDK raised after its own retries."""
    details: dict[str, Any] = {"provider": "anthropic"}
    if isinstance(exc, anthropic.APIConnectionError):
        reason = "timeout" if isinstance(exc, anthropic.APITimeoutError) else "connection"
        return ModelUnavailable(f"the Anthropic API could not be reached ({reason})", details={**details, "reason": reason})
    if not isinstance(exc, anthropic.APIStatusError):
        return ModelUnavailable(f"the Anthropic client failed: {exc}", details={**details, "reason": type(exc).__name__})
    status, kind = exc.status_code, exc.type
    details |= {"status": status, "type": kind, "message": exc.api_message, "request_id": exc.request_id}
    if status == 429 or kind == "rate_limit_error":
        retry_after = exc.response.headers.get("retry-after")
        return RateLimited(
            "the Anthropic API is rate limiting", details={**details, "retry_after": _seconds(retry_after)}
        )
    if status in (400, 404, 413, 422) or kind in INVALID_TYPES:
        return InvalidRequest(f"the Anthropic API refused the request: {exc.api_message or kind}", details=details)
    if status in (401, 403):
        return ModelUnavailable("the Anthropic API refused the platform's credentials", details=details)
    return ModelUnavailable(f"the Anthropic API failed ({kind or status})", details=details)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class AnthropicProvider:
    """Claude models over the Messages API, with tool use and streamed text."""

    name = "anthropic"
    supports_tools = True

    def __init__(self, settings: AgentsSettings) -> None:
        if settings.agents_anthropic_api_key is None:
            raise ModelUnavailable(
                "the anthropic provider has no API key (ONE_AGENTS_ANTHROPIC_API_KEY)",
                details={"provider": "anthropic"},
            )
        self.client = anthropic.AsyncAnthropic(
            api_key=settings.agents_anthropic_api_key.get_secret_value(),
            base_url=settings.agents_anthropic_base_url,
            timeout=settings.agents_anthropic_timeout,
            max_retries=settings.agents_anthropic_max_retries,
        )

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
        system, turns = as_messages(messages)
        request: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": max_tokens}
        if system:
            request["system"] = system
        if tools:
            request["tools"] = as_tools(tools)
        try:
            if on_text is None:
                return as_completion(await self.client.messages.create(**request))
            async with self.client.messages.stream(**request) as stream:
                async for text in stream.text_stream:
                    await on_text(text)
                return as_completion(await stream.get_final_message())
        except anthropic.AnthropicError as exc:
            raise as_platform_error(exc) from exc


def create(settings: AgentsSettings) -> AnthropicProvider:
    return AnthropicProvider(settings)
