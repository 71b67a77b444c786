"""The anthropic provider against a scripted server speaking the Messages wire over real HTTP: text, streaming, a tool
call round trip, and every failure mapped to a typed platform error."""

import socket
from collections.abc import AsyncIterator

import pytest

from services.agents.providers.anthropic import AnthropicProvider, as_messages
from services.agents.providers.base import ChatMessage, ToolCall, ToolSpec
from services.agents.settings import AgentsSettings
from shared.kernel.errors import InvalidRequest, OneError, RateLimited, Unavailable
from tests.agents.anthropic_wire import Failure, Reply, ScriptedAnthropic, start_scripted_anthropic

KEY = "sk-ant-scripted"
THING_GET = ToolSpec(
    "thing_get", "Read one thing of the org by id.", {"type": "object", "properties": {"id": {"type": "string"}}}
)
QUESTION = [ChatMessage("system", "You are the org's assistant."), ChatMessage("user", "What is thing abc called?")]


@pytest.fixture(scope="module")
async def wire() -> AsyncIterator[ScriptedAnthropic]:
    scripted, state = await start_scripted_anthropic()
    yield scripted
    state.server.should_exit = True
    await state.task


def provider_for(url: str, retries: int = 0) -> AnthropicProvider:
    settings = AgentsSettings(
        agents_anthropic_base_url=url, agents_anthropic_api_key=KEY, agents_anthropic_max_retries=retries
    )
    return AnthropicProvider(settings)


class Deltas(list[str]):
    async def __call__(self, text: str) -> None:
        self.append(text)


async def test_a_text_answer_with_system_prompt_and_usage(wire: ScriptedAnthropic) -> None:
    wire.prescribe(
        Reply([{"type": "text", "text": "It is called Lisbon warehouse."}], input_tokens=31, output_tokens=8)
    )

    completion = await provider_for(wire.url).complete("claude-sonnet-4-5", QUESTION, temperature=0.1, max_tokens=99)

    assert completion.text == "It is called Lisbon warehouse." and completion.finish_reason == "stop"
    assert completion.model == "anthropic:claude-scripted-1" and (
        completion.usage.input_tokens,
        completion.usage.output_tokens,
    ) == (
        31,
        8,
    )
    sent = wire.received[0]
    assert sent.headers["authorization"] == f"Bearer {KEY}" and sent.headers["anthropic-version"]
    assert (
        sent.body["model"] == "claude-sonnet-4-5" and sent.body["max_tokens"] == 99 and "temperature" not in sent.body
    )
    assert sent.body["system"] == "You are the org's assistant." and not sent.body.get("stream")
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is thing abc called?"}]}
    ]


async def test_streamed_text_arrives_as_deltas(wire: ScriptedAnthropic) -> None:
    wire.prescribe(Reply([{"type": "text", "text": "Streaming, one small piece at a time."}]))
    deltas = Deltas()

    completion = await provider_for(wire.url).complete("claude-sonnet-4-5", QUESTION, on_text=deltas)

    assert wire.received[0].body["stream"] is True
    assert len(deltas) > 3 and "".join(deltas) == completion.text == "Streaming, one small piece at a time."
    assert completion.usage.output_tokens == 9 and completion.finish_reason == "stop"


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
async def test_tool_call_round_trip(wire: ScriptedAnthropic, streaming: bool) -> None:
    asked = {"id": "abc", "fields": ["name", "kind"]}
    wire.prescribe(
        Reply(
            [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "thing_get", "input": asked},
            ],
            stop_reason="tool_use",
        ),
        Reply([{"type": "text", "text": "Thing abc is the Lisbon warehouse."}]),
    )
    provider, deltas = provider_for(wire.url), Deltas()
    sink = deltas if streaming else None

    first = await provider.complete("claude-sonnet-4-5", QUESTION, [THING_GET], on_text=sink)

    assert first.tool_calls == (ToolCall("toolu_1", "thing_get", asked),) and first.finish_reason == "tool_calls"
    assert first.text == "Let me look."
    assert wire.received[0].body["tools"] == [
        {"name": "thing_get", "description": THING_GET.description, "input_schema": THING_GET.parameters}
    ]
    history = [
        *QUESTION,
        ChatMessage("assistant", first.text, tool_calls=first.tool_calls),
        ChatMessage("tool", '{"name": "Lisbon warehouse"}', tool_call_id="toolu_1", name="thing_get"),
    ]

    final = await provider.complete("claude-sonnet-4-5", history, [THING_GET], on_text=sink)

    assert final.text == "Thing abc is the Lisbon warehouse." and not final.tool_calls
    assert wire.received[1].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "thing_get", "input": asked},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"name": "Lisbon warehouse"}'}],
        },
    ]
    if streaming:
        assert "".join(deltas) == first.text + final.text


def test_consecutive_tool_results_share_one_user_turn() -> None:
    calls = (ToolCall("t1", "thing_get", {"id": "a"}), ToolCall("t2", "thing_get", {"id": "b"}))
    system, turns = as_messages(
        [
            ChatMessage("system", "First."),
            ChatMessage("user", "Compare a and b."),
            ChatMessage("system", "Second."),
            ChatMessage("assistant", None, tool_calls=calls),
            ChatMessage("tool", "A", tool_call_id="t1", name="thing_get"),
            ChatMessage("tool", "B", tool_call_id="t2", name="thing_get"),
        ]
    )
    assert system == "First.\n\nSecond."
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert [block["tool_use_id"] for block in turns[2]["content"]] == ["t1", "t2"]
    assert [block["type"] for block in turns[1]["content"]] == ["tool_use", "tool_use"]  # no empty text block
    with pytest.raises(InvalidRequest):
        as_messages([ChatMessage("tool", "orphan", name="thing_get")])


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (Failure(500, "api_error"), Unavailable),
        (Failure(529, "overloaded_error"), Unavailable),
        (Failure(401, "authentication_error", "invalid x-api-key"), Unavailable),
        (Failure(403, "permission_error"), Unavailable),
        (Failure(429, "rate_limit_error", headers={"retry-after": "7"}), RateLimited),
        (Failure(400, "invalid_request_error", "max_tokens: too large"), InvalidRequest),
        (Failure(404, "not_found_error", "model: claude-nope"), InvalidRequest),
    ],
    ids=["500", "529", "401", "403", "429", "400", "404"],
)
async def test_failures_become_typed_errors(
    wire: ScriptedAnthropic, failure: Failure, expected: type[OneError], streaming: bool
) -> None:
    wire.prescribe(failure)

    with pytest.raises(expected) as raised:
        await provider_for(wire.url).complete("claude-sonnet-4-5", QUESTION, on_text=Deltas() if streaming else None)

    assert raised.value.details["provider"] == "anthropic" and raised.value.details["status"] == failure.status
    assert raised.value.details["type"] == failure.error_type and KEY not in str(raised.value.to_payload())
    if expected is RateLimited:
        assert raised.value.retry_after == 7.0


async def test_an_error_event_mid_stream_is_unavailable(wire: ScriptedAnthropic) -> None:
    wire.prescribe(Failure(200, "overloaded_error", "Overloaded", mid_stream=True))

    with pytest.raises(Unavailable) as raised:
        await provider_for(wire.url).complete("claude-sonnet-4-5", QUESTION, on_text=Deltas())

    assert raised.value.details["type"] == "overloaded_error"


async def test_a_server_error_is_retried_as_the_settings_say(wire: ScriptedAnthropic) -> None:
    wire.prescribe(Failure(503, "api_error", headers={"retry-after-ms": "20"}), Reply([{"type": "text", "text": "ok"}]))

    completion = await provider_for(wire.url, retries=1).complete("claude-sonnet-4-5", QUESTION)

    assert completion.text == "ok" and len(wire.received) == 2


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there

    for sink in (None, Deltas()):
        with pytest.raises(Unavailable) as raised:
            await provider_for(f"http://127.0.0.1:{port}").complete("claude-sonnet-4-5", QUESTION, on_text=sink)
        assert raised.value.details["reason"] == "connection"


def test_a_provider_without_a_key_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        AnthropicProvider(AgentsSettings(agents_anthropic_api_key=None))
