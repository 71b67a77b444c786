"""Search over the bus: org isolation with exactly k hits through the shared HNSW index, filters,
and hybrid ranking that finds an exact keyword pure vector search misses."""

import asyncpg
import numpy as np
import pytest
from pydantic_core import to_json

from services.knowledge import state
from services.knowledge.models import ITEM_COLUMNS
from services.knowledge.repository_search import INDEXED_DIMS
from shared.contracts.knowledge import ITEM_ADD_BATCH, ITEM_GET, SEARCH, SEARCH_HYBRID, pack_vector
from shared.kernel.errors import InvalidRequest
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.db import plain_url
from shared.runtime.service import ServiceRuntime
from tests.knowledge.conftest import make_thing, settled
from tests.tenancy.conftest import Account

MODEL = "test/clustered-384"
TIMEOUT = 60.0


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def add_vectors(bus: BusClient, owner: Account, vectors: np.ndarray, **fields: object) -> list:
    added = []
    for start in range(0, len(vectors), 100):  # 100 vectors of 384 floats fit a 1 MB NATS message
        items = [{"knowledge_type": "chunk", "text": f"row {start + i}", "embedding": v.tolist(),
                  "embedding_model": MODEL, **fields} for i, v in enumerate(vectors[start:start + 100])]
        added += (await bus.request(ITEM_ADD_BATCH, {"items": items}, owner.ctx, timeout=TIMEOUT)).items
    return added


def search_through_index(services: dict[str, ServiceRuntime], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every org counts as large: searches go through the HNSW index, as they would at scale."""
    monkeypatch.setattr(services["knowledge"].settings, "knowledge_exact_below", 0)
    monkeypatch.setattr(state.of(services["knowledge"]), "org_sizes", {})


@pytest.fixture
def through_index(services: dict[str, ServiceRuntime], monkeypatch: pytest.MonkeyPatch) -> None:
    search_through_index(services, monkeypatch)


@pytest.mark.parametrize("crowd", [300, 1500])
async def test_k_hits_from_the_org_even_when_another_org_is_closer(
    bus: BusClient, owner: Account, stranger: Account, through_index: None, crowd: int
) -> None:
    rng = np.random.default_rng(crowd)
    query = unit(rng.normal(size=(1, 384)))[0]
    theirs = unit(query + 0.05 * rng.normal(size=(crowd, 384)))  # all much closer to the query
    mine = unit(query + 0.6 * rng.normal(size=(40, 384)))
    await add_vectors(bus, stranger, theirs)
    added = await add_vectors(bus, owner, mine)
    result = await bus.request(SEARCH, {"vector": query.tolist(), "embedding_model": MODEL, "k": 10}, owner.ctx)
    assert len(result.hits) == 10
    ids = {item.id for item in added}
    assert all(hit.item.id in ids for hit in result.hits)
    exact = np.argsort(-(mine @ query))[:10]
    assert [hit.item.id for hit in result.hits] == [added[i].id for i in exact]


async def test_fewer_than_k_when_the_org_has_fewer(bus: BusClient, owner: Account, through_index: None) -> None:
    rng = np.random.default_rng(7)
    await add_vectors(bus, owner, unit(rng.normal(size=(4, 384))))
    result = await bus.request(SEARCH, {"vector": unit(rng.normal(size=(1, 384)))[0].tolist(),
                                        "embedding_model": MODEL, "k": 10}, owner.ctx)
    assert len(result.hits) == 4


async def test_a_packed_vector_searches_and_stores_as_its_list_does(
    bus: BusClient, owner: Account, through_index: None
) -> None:
    rng = np.random.default_rng(11)
    vectors = unit(rng.normal(size=(30, 384))).astype(np.float32)
    [packed_item] = (await bus.request(ITEM_ADD_BATCH, {"items": [{
        "knowledge_type": "vector_only", "embedding": pack_vector(vectors[0]), "embedding_model": MODEL}]}, owner.ctx)).items
    await add_vectors(bus, owner, vectors[1:])
    query = vectors[0] + np.float32(0.01)
    as_list = await bus.request(SEARCH, {"vector": query.tolist(), "embedding_model": MODEL}, owner.ctx)
    as_packed = await bus.request(SEARCH, {"vector": pack_vector(query), "embedding_model": MODEL}, owner.ctx)
    assert [h.item.id for h in as_packed.hits] == [h.item.id for h in as_list.hits]
    assert as_packed.hits[0].item.id == packed_item.id
    stored = await bus.request(ITEM_GET, {"id": packed_item.id, "include_embedding": True}, owner.ctx)
    assert np.array_equal(np.array(stored.embedding, dtype=np.float32), vectors[0])
    for bad in ("not base64!", "AAAA"):  # not base64; 3 bytes, not whole float32s
        with pytest.raises(InvalidRequest) as error:
            await bus.request(SEARCH, {"vector": bad, "embedding_model": MODEL}, owner.ctx)
        assert error.value.details["errors"][0]["loc"] == ["vector"]


async def test_models_are_never_mixed(bus: BusClient, owner: Account) -> None:
    rng = np.random.default_rng(8)
    await add_vectors(bus, owner, unit(rng.normal(size=(5, 384))))
    result = await bus.request(SEARCH, {"query": "anything at all", "k": 5}, owner.ctx)
    assert result.embedding_model == "sentence-transformers/all-MiniLM-L6-v2" and result.hits == []
    with pytest.raises(InvalidRequest) as error:
        await bus.request(SEARCH, {"vector": [0.1] * 10}, owner.ctx)
    assert error.value.code == "embedding_model_mismatch"


@pytest.mark.parametrize("path", ["exact", "index"])
async def test_filters_by_label_and_source_type(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    if path == "index":
        search_through_index(services, monkeypatch)
    rng = np.random.default_rng(9)
    post = await make_thing(bus, owner.ctx, "blog_post")
    video = await make_thing(bus, owner.ctx, "video")
    await add_vectors(bus, owner, unit(rng.normal(size=(5, 384))), source_thing_id=str(post.id), labels=["topic:a"])
    await add_vectors(bus, owner, unit(rng.normal(size=(5, 384))), source_thing_id=str(video.id), labels=["topic:b"])
    query = {"vector": unit(rng.normal(size=(1, 384)))[0].tolist(), "embedding_model": MODEL, "k": 10}
    by_type = await bus.request(SEARCH, {**query, "filters": {"source_thing_types": ["video"]}}, owner.ctx)
    assert len(by_type.hits) == 5 and {h.item.source_thing_id for h in by_type.hits} == {video.id}
    by_label = await bus.request(SEARCH, {**query, "filters": {"labels": ["topic:a"]}}, owner.ctx)
    assert len(by_label.hits) == 5 and all(h.item.labels == ["topic:a"] for h in by_label.hits)


COFFEE = [
    "Descale the coffee maker every month to keep the brewer heating evenly.",
    "If your brewer drips slowly, the group head gasket may be worn out.",
    "Grind size matters: a finer grind slows the extraction of the shot.",
    "Clean the steam wand after frothing milk so it does not clog.",
    "A portafilter that leaks around the rim usually needs a new seal.",
    "Warm the cups before pulling a shot to keep the crema intact.",
    "Use filtered water in the reservoir to reduce limescale in the boiler.",
    "When the pump sounds loud but nothing flows, the tank may be empty.",
    "Tamp the grounds with even pressure for a balanced extraction.",
    "Backflush the brew group weekly with a blind basket and detergent.",
    "The pressure gauge should read about nine bar during extraction.",
    "Let the boiler reach temperature before brewing the first cup.",
]
KEYWORD = "Inventory ledger: entry XR-7719 maps to warehouse bin 42 and supplier Nordwind."


async def test_hybrid_finds_the_exact_keyword_vector_search_misses(bus: BusClient, owner: Account) -> None:
    items = [{"knowledge_type": "chunk", "text": text} for text in [*COFFEE, KEYWORD]]
    added = (await bus.request(ITEM_ADD_BATCH, {"items": items}, owner.ctx, timeout=TIMEOUT)).items
    keyword_id = added[-1].id
    question = "espresso machine shows XR-7719, what is wrong with my coffee?"
    semantic = await bus.request(SEARCH, {"query": question, "k": 5}, owner.ctx, timeout=TIMEOUT)
    assert keyword_id not in [h.item.id for h in semantic.hits]
    hybrid = await bus.request(SEARCH_HYBRID, {"query": question, "k": 5}, owner.ctx, timeout=TIMEOUT)
    found = {h.item.id: h for h in hybrid.hits}
    assert len(hybrid.hits) == 5 and keyword_id in found and found[keyword_id].ranks["lexical"] == 1
    assert found[keyword_id].similarity is not None and "semantic" in found[keyword_id].ranks
    only_semantic = await bus.request(SEARCH_HYBRID, {"query": question, "k": 5, "weights": {"lexical": 0}},
                                      owner.ctx, timeout=TIMEOUT)
    assert [h.item.id for h in only_semantic.hits] == [h.item.id for h in semantic.hits]


async def test_hybrid_label_boost(bus: BusClient, owner: Account) -> None:
    items = [{"knowledge_type": "chunk", "text": text, "labels": ["skill:maintenance"] if i == 11 else []}
             for i, text in enumerate(COFFEE)]
    added = (await bus.request(ITEM_ADD_BATCH, {"items": items}, owner.ctx, timeout=TIMEOUT)).items
    question = "why does my portafilter leak around the rim?"
    plain = await bus.request(SEARCH_HYBRID, {"query": question, "k": 3}, owner.ctx, timeout=TIMEOUT)
    boosted = await bus.request(SEARCH_HYBRID, {"query": question, "k": 3, "boost_labels": ["skill:maintenance"],
                                                "weights": {"labels": 2.0}}, owner.ctx, timeout=TIMEOUT)
    assert added[11].id not in [h.item.id for h in plain.hits]
    assert boosted.hits[0].item.id == added[11].id and boosted.hits[0].ranks["labels"] == 1


@pytest.mark.parametrize("path", ["exact", "index"])
async def test_hybrid_never_returns_another_orgs_items(
    bus: BusClient, owner: Account, stranger: Account, services: dict[str, ServiceRuntime],
    monkeypatch: pytest.MonkeyPatch, path: str,
) -> None:
    """The stranger's items match every signal better (the exact keyword, the boosted label, the
    closest meaning); none of them may reach the owner's results, whichever signal ranks them."""
    if path == "index":
        search_through_index(services, monkeypatch)
    question = "espresso machine shows XR-7719, what is wrong with my coffee?"
    theirs = [{"knowledge_type": "chunk", "text": text, "labels": ["skill:maintenance"]}
              for text in [KEYWORD, question, *COFFEE]]
    their_ids = {item.id for item in (await bus.request(ITEM_ADD_BATCH, {"items": theirs}, stranger.ctx,
                                                        timeout=TIMEOUT)).items}
    mine = [{"knowledge_type": "chunk", "text": text, "labels": ["skill:maintenance"] if i == 0 else []}
            for i, text in enumerate(COFFEE[:4])]
    my_ids = {item.id for item in (await bus.request(ITEM_ADD_BATCH, {"items": mine}, owner.ctx, timeout=TIMEOUT)).items}
    result = await bus.request(SEARCH_HYBRID, {"query": question, "k": 20, "boost_labels": ["skill:maintenance"]},
                               owner.ctx, timeout=TIMEOUT)
    assert {hit.item.id for hit in result.hits} == my_ids and their_ids.isdisjoint(h.item.id for h in result.hits)
    assert max(hit.ranks.get("labels", 0) for hit in result.hits) == 1  # one of mine carries the label
    lexical = await bus.request(SEARCH_HYBRID, {"query": "XR-7719 Nordwind ledger", "k": 20,
                                                "weights": {"semantic": 0}}, owner.ctx, timeout=TIMEOUT)
    assert lexical.hits == []  # the keyword exists only in the stranger's org


async def test_hits_carry_what_to_cite(bus: BusClient, owner: Account) -> None:
    """Enough to cite a hit: the source thing, its type and field, and where the chunk sits in the text."""
    text = " ".join(COFFEE * 12)  # several windows
    manual = await make_thing(bus, owner.ctx, "blog_post", "Espresso manual", content=text)
    await settled(bus, owner, manual.id, 1)
    for spec in (SEARCH, SEARCH_HYBRID):
        result = await bus.request(spec, {"query": "how to fix a leaking portafilter seal", "k": 3}, owner.ctx,
                                   timeout=TIMEOUT)
        assert len(result.hits) == 3, spec.type
        for hit in result.hits:
            item = hit.item
            assert (item.source_thing_id, item.source_thing_type, item.source_field) == (manual.id, "blog_post", "content")
            assert item.document_id is not None and item.chunk is not None and item.chunk.index >= 0
            assert text[item.chunk.start:item.chunk.end] == item.text
        assert len({hit.item.chunk.index for hit in result.hits}) == 3


async def test_the_knowledge_types_filter(bus: BusClient, owner: Account) -> None:
    items = [{"knowledge_type": kind, "text": text} for kind, text in
             [("chunk", COFFEE[0]), ("chunk", COFFEE[1]), ("vector_only", COFFEE[2]), ("vector_only", COFFEE[3])]]
    added = (await bus.request(ITEM_ADD_BATCH, {"items": items}, owner.ctx, timeout=TIMEOUT)).items
    by_type = {kind: {item.id for item in added if item.knowledge_type == kind} for kind in ("chunk", "vector_only")}
    query = {"query": "coffee machine care", "k": 10}
    for spec in (SEARCH, SEARCH_HYBRID):
        both = await bus.request(spec, query, owner.ctx, timeout=TIMEOUT)
        assert {hit.item.id for hit in both.hits} == by_type["chunk"] | by_type["vector_only"]
        for kind, ids in by_type.items():
            only = await bus.request(spec, {**query, "filters": {"knowledge_types": [kind]}}, owner.ctx, timeout=TIMEOUT)
            assert {hit.item.id for hit in only.hits} == ids, (spec.type, kind)
    with pytest.raises(InvalidRequest):
        await bus.request(SEARCH, {**query, "filters": {"knowledge_types": ["label"]}}, owner.ctx)


async def test_the_reply_built_from_rows_is_exactly_a_search_result(bus: BusClient, owner: Account) -> None:
    """Search replies skip the model (`Encoded.plain`): every key must be one the model reads, every value
    one it keeps as it is, or a client would silently lose a field."""
    from pydantic_core import from_json

    from shared.contracts.knowledge import SearchResult
    from shared.kernel.envelope import Envelope

    thing = await make_thing(bus, owner.ctx, "blog_post")
    rng = np.random.default_rng(11)
    await add_vectors(bus, owner, unit(rng.normal(size=(3, 384))), source_thing_id=str(thing.id), labels=["topic:a"],
                      metadata={"page": 2})
    query = {"query": "row", "vector": unit(rng.normal(size=(1, 384)))[0].tolist(), "embedding_model": MODEL, "k": 3}
    for spec in (SEARCH, SEARCH_HYBRID):
        request = Envelope(type=spec.type, org_id=owner.ctx.org_id, actor_id=owner.ctx.actor_id,
                           role=owner.ctx.role, permissions=owner.ctx.permissions, payload=query)
        payload = from_json((await bus.nc.request(spec.subject, request.to_bytes(), timeout=TIMEOUT)).data)["payload"]
        assert len(payload["hits"]) == 3
        parsed = SearchResult.model_validate(payload).model_dump(mode="json", exclude_unset=True)
        assert from_json(to_json(parsed)) == payload, spec.type


async def test_the_index_functions_return_an_items_columns(migrated: Settings) -> None:
    """`knowledge.nearest_<dim>` (migrations/v0003, v0005) spell out their columns: they must follow the table's."""
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        for dim in INDEXED_DIMS:
            names = await conn.fetchval(f"""
                SELECT proargnames[pronargs + 1:] FROM pg_proc WHERE oid = 'knowledge.nearest_{dim}'::regproc""")
            assert names == [c.name for c in ITEM_COLUMNS] + ["similarity"], dim
    finally:
        await conn.close()


async def _walks_the_index(
    conn: asyncpg.Connection, dim: int, org_id: object, model: str, query: np.ndarray, narrowed_to: object = None
) -> bool:
    """Whether a call of `knowledge.nearest_<dim>` walked its size's index while page costs make sorting
    the org's rows look far cheaper. Scans are counted by this backend, unflushed within a transaction,
    so no other connection's are seen. `narrowed_to`: a source thing."""
    scans = f"SELECT pg_stat_get_xact_numscans('knowledge.items_embedding_{dim}'::regclass)"
    async with conn.transaction():
        await conn.execute("SET LOCAL seq_page_cost = 0.01; SET LOCAL random_page_cost = 1000")
        before = await conn.fetchval(scans)
        await conn.fetch(f"SELECT id FROM knowledge.nearest_{dim}($1, 40, $2, '{{chunk,vector_only}}', NULL, $3, NULL, "
                         f"$4::text::vector, 10)", org_id, model, narrowed_to, str(query.tolist()))
        return await conn.fetchval(scans) > before


async def test_an_unfiltered_index_search_always_walks_the_index(
    bus: BusClient, owner: Account, migrated: Settings
) -> None:
    """Planned once per connection with sorting ruled out (migrations/v0006), the unfiltered search
    walks the index even where the planner would sort the org's rows; narrowed to a source thing, it
    is planned per call, and the planner's choice stands."""
    rng = np.random.default_rng(384)
    thing = await make_thing(bus, owner.ctx, "blog_post")
    vectors = unit(rng.normal(size=(10, 384)))
    await add_vectors(bus, owner, vectors, source_thing_id=str(thing.id))
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        for _ in range(2):  # the first call makes the generic plan, the second reuses it
            assert await _walks_the_index(conn, 384, owner.ctx.org_id, MODEL, vectors[0])
        assert not await _walks_the_index(conn, 384, owner.ctx.org_id, MODEL, vectors[0], narrowed_to=thing.id)
    finally:
        await conn.close()


@pytest.mark.parametrize("dim", sorted(INDEXED_DIMS - {384}))
async def test_the_production_sizes_have_their_own_index_and_search_function(
    bus: BusClient, owner: Account, stranger: Account, through_index: None, migrated: Settings, dim: int
) -> None:
    """The OpenAI (1536) and common open-model (768, 1024) sizes: exactly k nearest of the org's own
    through that size's search function, even with another org's closer vectors beside them, and an
    index the function's query can walk."""
    rng = np.random.default_rng(dim)
    model = f"test/size-{dim}"
    query = unit(rng.normal(size=(1, dim)))[0]
    mine = unit(query + 0.3 * rng.normal(size=(30, dim))).astype(np.float32)
    theirs = unit(query + 0.05 * rng.normal(size=(30, dim))).astype(np.float32)
    added = {}
    for account, vectors in ((owner, mine), (stranger, theirs)):
        added[account.ctx.org_id] = []
        for start in range(0, len(vectors), 10):  # packed: ten 1536-d vectors stay well under 1 MB
            items = [{"knowledge_type": "chunk", "text": f"row {start + i}", "embedding": pack_vector(v),
                      "embedding_model": model} for i, v in enumerate(vectors[start:start + 10])]
            added[account.ctx.org_id] += (await bus.request(ITEM_ADD_BATCH, {"items": items}, account.ctx)).items
    result = await bus.request(SEARCH, {"vector": pack_vector(query), "embedding_model": model, "k": 10}, owner.ctx)
    assert not result.exact  # through nearest_<dim>
    nearest = np.argsort(-(mine @ query.astype(np.float32)))[:10]
    assert [hit.item.id for hit in result.hits] == [added[owner.ctx.org_id][i].id for i in nearest]
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        assert await _walks_the_index(conn, dim, owner.ctx.org_id, model, query)
    finally:
        await conn.close()


async def test_every_indexed_size_builds_its_graph_at_ef_construction_128(migrated: Settings) -> None:
    """migrations/v0006: the graph quality that keeps recall@10 at or above 95% at the default ef_search."""
    conn = await asyncpg.connect(plain_url(migrated.database_url))
    try:
        for dim in INDEXED_DIMS:
            options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE oid = $1::regclass",
                                          f"knowledge.items_embedding_{dim}")
            assert options == ["ef_construction=128"], dim
    finally:
        await conn.close()
