"""Embedders: the real local model, feature hashing, and an OpenAI-compatible endpoint served by a real HTTP server."""

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from services.knowledge.chunking import packaged_tokenizer
from services.knowledge.embedders import HashingEmbedder, LocalModelEmbedder, OpenAICompatibleEmbedder, make_embedder
from services.knowledge.settings import KnowledgeSettings
from shared.contracts.knowledge import EmbeddingMalformed, EmbeddingRejected, EmbeddingUnavailable, EmptyText
from shared.kernel.errors import Internal, InvalidRequest, Unavailable

API_KEY = "sk-test-0123456789"


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def assert_unit(vectors: list[list[float]], dim: int) -> None:
    assert all(len(vector) == dim and math.isclose(cosine(vector, vector), 1.0, abs_tol=1e-6) for vector in vectors)


@pytest.fixture(scope="module")
async def local() -> LocalModelEmbedder:
    embedder = LocalModelEmbedder(KnowledgeSettings(knowledge_embed_batch=16))
    await embedder.warm()
    return embedder


class TestLocalModel:
    async def test_vectors_are_unit_384d_and_close_for_close_meanings(self, local: LocalModelEmbedder) -> None:
        cat, feline, revenue = await local.embed(
            ["The cat sits on the mat", "A feline rests on a rug", "Quarterly revenue grew 12%"]
        )
        assert (local.model, local.dim) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
        assert_unit([cat, feline, revenue], 384)
        assert cosine(cat, feline) > cosine(cat, revenue) + 0.3

    async def test_the_same_text_gets_the_same_vector(self, local: LocalModelEmbedder) -> None:
        first = await local.embed(["Invoices are due within thirty days.", "Shipping is free above 50 euros."])
        second = await local.embed(["Invoices are due within thirty days.", "Shipping is free above 50 euros."])
        assert all(math.isclose(a, b, abs_tol=1e-6) for u, v in zip(first, second) for a, b in zip(u, v))

    async def test_tokens_beyond_the_models_256_count(self, local: LocalModelEmbedder) -> None:
        """The tail is about another topic: it moves the long text's vector towards that topic."""
        head = " ".join(f"Our invoices for order {n} are due within thirty days of delivery." for n in range(30))
        tail = " ".join(
            f"The mountain trail number {n} climbs through pine forest to a glacier lake." for n in range(20)
        )
        tokenizer = packaged_tokenizer()
        offsets = tokenizer.offsets(head)
        assert len(offsets) > 254 and tokenizer.count(tail) > 200
        first_256 = head[: offsets[253][1]]
        long_vector, first_vector, hiking = await local.embed([f"{head} {tail}", first_256, "hiking to a lake"])
        assert_unit([long_vector], 384)
        assert cosine(long_vector, first_vector) < 0.95
        assert cosine(long_vector, hiking) > cosine(first_vector, hiking) + 0.1


class TestHashing:
    async def test_vectors_are_deterministic_unit_and_similar_for_shared_words(self) -> None:
        texts = ["the invoice is due on friday", "the invoice is due on monday", "glacier lakes in the alps"]
        vectors = await HashingEmbedder().embed(texts)
        assert vectors == await HashingEmbedder().embed(texts)
        assert_unit(vectors, 384)
        assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3

    async def test_the_dimension_is_part_of_the_model_name(self) -> None:
        small = HashingEmbedder(dim=128)
        assert (small.model, HashingEmbedder().model) == ("one/hashing-v1-128", "one/hashing-v1")
        assert_unit(await small.embed(["?!", "a"]), 128)


@pytest.mark.parametrize("embedder", [HashingEmbedder(), LocalModelEmbedder(KnowledgeSettings())], ids=["hashing", "local"])
async def test_empty_text_is_invalid(embedder: Any) -> None:
    with pytest.raises(EmptyText) as raised:
        await embedder.embed(["fine", " \n\t"])
    assert isinstance(raised.value, InvalidRequest) and raised.value.details == {"position": 1}


async def test_make_embedder_follows_the_setting() -> None:
    kinds = {"hashing": HashingEmbedder, "local": LocalModelEmbedder, "openai": OpenAICompatibleEmbedder}
    for name, kind in kinds.items():
        embedder = make_embedder(KnowledgeSettings(knowledge_embedder=name))
        assert isinstance(embedder, kind)
        await embedder.close()


class EmbeddingServer:
    """A minimal HTTP/1.1 `POST /v1/embeddings`; the model name picks a behaviour."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():
                headers = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = json.loads(await reader.readexactly(int(headers.get("content-length", 0))) or b"{}")
                status, extra, answer = self._answer(request_line.decode().split()[:2], headers, body)
                payload = json.dumps(answer).encode()
                head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                writer.write((head + "".join(f"{k}: {v}\r\n" for k, v in extra.items()) + "\r\n").encode() + payload)
                await writer.drain()
        finally:
            writer.close()

    def _answer(self, request: list[str], headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict, Any]:
        if request != ["POST", "/v1/embeddings"]:
            return 404, {}, {"error": {"code": "not_found"}}
        self.calls.append(body)
        sent_key = headers.get("authorization", "").removeprefix("Bearer ")
        if sent_key != API_KEY:
            error = {"message": f"Incorrect API key provided: {sent_key}", "code": "invalid_api_key"}
            return 401, {}, {"error": error}
        model = body["model"]
        if model == "always-500":
            return 500, {}, {"error": {"message": "boom"}}
        if model == "flaky" and len(self.calls) == 1:
            return 429, {"Retry-After": "0"}, {"error": {"message": "slow down"}}
        dim = body.get("dimensions", 8)
        vectors = [[3.0 * (len(text) + i) for i in range(dim)] for text in body["input"]]
        if model == "ragged":
            vectors[-1] = vectors[-1][:-1]
        if model == "ignores-dimensions":
            vectors = [vector + [1.0] for vector in vectors]
        items = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return 200, {}, {"object": "list", "data": items[::-1], "model": model}


@pytest.fixture
async def server() -> AsyncIterator[EmbeddingServer]:
    found = EmbeddingServer()
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
async def remote(server: EmbeddingServer) -> AsyncIterator[Callable[..., OpenAICompatibleEmbedder]]:
    """Makes embedders for the test server (`model` picks its behaviour), closed after the test."""
    made: list[OpenAICompatibleEmbedder] = []

    def make(model: str = "test-model", **overrides: Any) -> OpenAICompatibleEmbedder:
        settings = {
            "knowledge_openai_base_url": f"http://127.0.0.1:{server.port}/v1",
            "knowledge_openai_api_key": API_KEY,
            "knowledge_openai_model": model,
            "knowledge_embed_batch": 2,
            **overrides,
        }
        made.append(OpenAICompatibleEmbedder(KnowledgeSettings(**settings), backoff=0.01))
        return made[-1]

    yield make
    await asyncio.gather(*(embedder.close() for embedder in made))


def expected(text: str, dim: int = 8) -> list[float]:
    raw = [len(text) + i for i in range(dim)]
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


class TestOpenAICompatible:
    async def test_batches_are_sent_and_answers_ordered_by_index(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        embedder = remote()
        texts = ["a", "bb", "ccc", "dddd", "eeeee"]
        vectors = await embedder.embed(texts)
        assert [len(call["input"]) for call in server.calls] == [2, 2, 1]
        assert all(call["encoding_format"] == "float" and "dimensions" not in call for call in server.calls)
        assert_unit(vectors, 8)
        assert all(math.isclose(a, b) for text, v in zip(texts, vectors) for a, b in zip(v, expected(text)))

    async def test_the_dimension_is_learned_by_warming_up(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        embedder = remote()
        with pytest.raises(RuntimeError):
            embedder.dim
        await embedder.warm()
        assert embedder.dim == 8 and len(server.calls) == 1

    async def test_a_configured_dimension_is_asked_for_and_checked(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        embedder = remote(knowledge_openai_dim=6)
        await embedder.warm()
        assert server.calls == [] and embedder.dim == 6
        assert_unit(await embedder.embed(["hello"]), 6)
        assert server.calls[0]["dimensions"] == 6
        with pytest.raises(EmbeddingMalformed, match=r"\[7\] dimensions, expected 6"):
            await remote("ignores-dimensions", knowledge_openai_dim=6).embed(["hello"])

    async def test_vectors_of_different_lengths_are_malformed(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        with pytest.raises(EmbeddingMalformed) as raised:
            await remote("ragged").embed(["one", "two"])
        assert isinstance(raised.value, Internal)

    async def test_a_429_is_retried_after_the_time_it_asks(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        vectors = await remote("flaky").embed(["hello"])
        assert len(server.calls) == 2
        assert_unit(vectors, 8)

    async def test_a_lasting_500_is_unavailable_after_four_attempts(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        with pytest.raises(EmbeddingUnavailable) as raised:
            await remote("always-500").embed(["hello"])
        assert len(server.calls) == 4 and isinstance(raised.value, Unavailable)
        assert f"127.0.0.1:{server.port}/v1/embeddings" in raised.value.message and "500" in raised.value.message

    async def test_an_unreachable_endpoint_is_unavailable(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        await server.stop()
        with pytest.raises(EmbeddingUnavailable, match="ConnectError"):
            await remote().embed(["hello"])

    async def test_a_wrong_key_is_rejected_at_once_without_showing_it(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        secret = "sk-wrong-secret-42"
        with pytest.raises(EmbeddingRejected) as raised:
            await remote(knowledge_openai_api_key=secret).embed(["hello"])
        assert len(server.calls) == 1
        assert "401" in raised.value.message and "invalid_api_key" in raised.value.message
        assert secret not in f"{raised.value} {raised.value!r} {raised.value.to_payload()}"

    async def test_empty_text_is_refused_before_any_call(
        self, server: EmbeddingServer, remote: Callable[..., OpenAICompatibleEmbedder]
    ) -> None:
        with pytest.raises(EmptyText):
            await remote().embed(["ok", ""])
        assert server.calls == []
