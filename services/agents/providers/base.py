"""The one interface every model provider speaks, so an agent's model is a setting, not code.

A run hands the provider the whole context (messages with their tool calls and results) and
the tools the agent may use; the provider answers with text and/or tool calls, the tokens it
spent and the model that actually answered. Text is streamed through `on_text` as it is
generated (deltas), and the returned `Completion` holds the whole of it.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
TextSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it: a name, what it does, and its arguments' JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for; `arguments` is the decoded JSON object (`{}` when the model sent none)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role "tool": which call this is the result of
    name: str | None = None  # role "tool": the tool's name


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""  # the model that answered, as `<provider>:<model>` (what a run and its execution record show)
    finish_reason: str = "stop"  # "stop" | "tool_calls" | "length" | ...


class ModelProvider(Protocol):
    """Chat completion with tool calling. Raises `ModelUnavailable` (an `Unavailable`) when the model cannot be reached."""

    name: str  # "openai", "anthropic", "offline"
    supports_tools: bool  # False: the run offers no tools and says so in the context

    async def complete(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        temperature: float = 0.2,
        max_tokens: int = 512,
        on_text: TextSink | None = None,
    ) -> Completion: ...
