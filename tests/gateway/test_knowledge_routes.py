"""Knowledge over real HTTP: labels, a thing's labels and links, items, ingestion and search, each reaching the service."""

import asyncio
from typing import Any

from tests.gateway.conftest import Caller, assert_problem
from tests.gateway.test_things import create

TEXTS = [
    "Descale the espresso machine every month with citric acid.",
    "Bees cluster together to keep the queen warm in winter.",
    "Inventory ledger: entry XR-7719 maps to warehouse bin 42.",
]


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def add_item(caller: Caller, text: str, status: int = 201, **fields: Any) -> dict[str, Any]:
    items = await ok(await caller.call("POST", "/v1/knowledge/items", {"knowledge_type": "chunk", "text": text, **fields}),
                     status)
    return items["items"][0]


class TestLabels:
    async def test_ensure_get_alias_list_deprecate_delete(self, alice: Caller) -> None:
        label = await ok(await alice.call("POST", "/v1/labels", {"name": "topic:ai/ml", "metadata": {"by": "test"}}))
        assert label["name"] == "topic:ai/ml" and label["deprecated"] is False
        assert (await ok(await alice.call("POST", "/v1/labels", {"name": "topic:ai/ml"})))["id"] == label["id"]

        assert (await ok(await alice.call("GET", "/v1/labels/topic:ai/ml")))["id"] == label["id"]  # a `/` in the name
        aliased = await ok(await alice.call("POST", "/v1/labels/topic:ai/ml/aliases", {"alias": "topic:ml"}))
        assert aliased["aliases"] == ["topic:ml"]
        assert (await ok(await alice.call("GET", "/v1/labels/topic:ml")))["id"] == label["id"]

        await ok(await alice.call("POST", "/v1/labels", {"name": "skill:brewing"}))
        names = [lb["name"] for lb in (await ok(await alice.call("GET", "/v1/labels", prefix="topic:")))["labels"]]
        assert names == ["topic:ai/ml"]
        first = await ok(await alice.call("GET", "/v1/labels", limit=1))
        assert len(first["labels"]) == 1 and first["next_cursor"]

        deprecated = await ok(await alice.call("POST", "/v1/labels/skill:brewing/deprecate"))
        assert deprecated["deprecated"] is True
        assert [lb["name"] for lb in (await ok(await alice.call("GET", "/v1/labels")))["labels"]] == ["topic:ai/ml"]
        removed = await ok(await alice.call("DELETE", "/v1/labels/topic:ml"))
        assert removed["outcome"] == "deleted" and removed["references"] == 0
        assert_problem(await alice.call("GET", "/v1/labels/topic:ai/ml"), 404, "knowledge_not_found")

    async def test_label_a_thing_then_find_it_by_label(self, alice: Caller) -> None:
        post, other = await create(alice, "Labeled"), await create(alice, "Other")
        path = f"/v1/things/{post['id']}/labels"
        labeled = await ok(await alice.call("POST", path, {"labels": ["topic:bees", "skill:beekeeping"]}))
        assert labeled["thing_id"] == post["id"]
        assert sorted(lb["name"] for lb in labeled["labels"]) == ["skill:beekeeping", "topic:bees"]
        await ok(await alice.call("POST", f"/v1/things/{other['id']}/labels", {"labels": ["topic:bees"]}))

        found = await ok(await alice.call("GET", "/v1/knowledge/things", labels=["topic:bees", "skill:beekeeping"]))
        assert found["thing_ids"] == [post["id"]]
        either = await ok(await alice.call("GET", "/v1/knowledge/things", labels=["topic:bees"], match="any"))
        assert sorted(either["thing_ids"]) == sorted([post["id"], other["id"]])

        unlabeled = await ok(await alice.call("DELETE", path, labels="skill:beekeeping"))
        assert [lb["name"] for lb in unlabeled["labels"]] == ["topic:bees"]
        assert [lb["name"] for lb in (await ok(await alice.call("GET", path)))["labels"]] == ["topic:bees"]
        in_use = await ok(await alice.call("DELETE", "/v1/labels/topic:bees"))
        assert in_use["outcome"] == "deprecated" and in_use["references"] == 2

    async def test_errors_are_problems(self, alice: Caller) -> None:
        assert_problem(await alice.call("POST", "/v1/labels", {"name": "Bad Label!"}), 422, "invalid_label")
        await ok(await alice.call("POST", "/v1/labels", {"name": "topic:x"}))
        await ok(await alice.call("POST", "/v1/labels", {"name": "topic:y"}))
        assert_problem(await alice.call("POST", "/v1/labels/topic:y/aliases", {"alias": "topic:x"}), 409, "label_conflict")
        assert_problem(await alice.call("GET", "/v1/labels/topic:nope"), 404, "knowledge_not_found")
        thing = await create(alice)
        assert_problem(await alice.call("POST", f"/v1/things/{thing['id']}/labels", {"labels": []}), 422, "invalid")
        unknown = "01900000-0000-7000-8000-000000000000"
        assert_problem(await alice.call("POST", f"/v1/things/{unknown}/labels", {"labels": ["topic:x"]}), 404)


class TestItems:
    async def test_add_get_query_delete_restore(self, alice: Caller) -> None:
        item = await add_item(alice, TEXTS[0], labels=["topic:coffee"], metadata={"source": "manual"})
        assert item["knowledge_type"] == "chunk" and item["labels"] == ["topic:coffee"] and item["embedding"] is None
        path = f"/v1/knowledge/items/{item['id']}"
        assert (await ok(await alice.call("GET", path)))["text"] == TEXTS[0]
        with_vector = await ok(await alice.call("GET", path, include_embedding="true"))
        assert len(with_vector["embedding"]) == with_vector["embedding_dim"]

        batch = await ok(await alice.call("POST", "/v1/knowledge/items/batch",
                                          {"items": [{"knowledge_type": "chunk", "text": t} for t in TEXTS[1:]]}), 201)
        assert len(batch["items"]) == 2
        listed = await ok(await alice.call("GET", "/v1/knowledge/items", knowledge_type="chunk"))
        assert {i["id"] for i in listed["items"]} == {item["id"], *(i["id"] for i in batch["items"])}
        by_label = await ok(await alice.call("GET", "/v1/knowledge/items", labels="topic:coffee", knowledge_type="chunk"))
        assert [i["id"] for i in by_label["items"]] == [item["id"]]

        assert (await ok(await alice.call("DELETE", path)))["deleted_at"] is not None
        assert (await ok(await alice.call("GET", path)))["deleted_at"] is not None  # still there, for a restore
        chunks = {"knowledge_type": "chunk", "labels": "topic:coffee"}
        assert (await ok(await alice.call("GET", "/v1/knowledge/items", **chunks)))["items"] == []
        gone = await ok(await alice.call("GET", "/v1/knowledge/items", include_deleted="true", **chunks))
        assert [i["id"] for i in gone["items"]] == [item["id"]]
        assert (await ok(await alice.call("POST", f"{path}/restore")))["deleted_at"] is None
        assert [i["id"] for i in (await ok(await alice.call("GET", "/v1/knowledge/items", **chunks)))["items"]] == [item["id"]]

    async def test_link_list_unlink(self, alice: Caller) -> None:
        thing, item = await create(alice, "Summarized"), await add_item(alice, TEXTS[1])
        path = f"/v1/things/{thing['id']}/knowledge"
        link = await ok(await alice.call("POST", path, {"knowledge_id": item["id"], "role": "summary"}), 201)
        assert (link["thing_id"], link["knowledge_id"], link["role"]) == (thing["id"], item["id"], "summary")
        listed = await ok(await alice.call("GET", path, role="summary"))
        assert [k["item"]["id"] for k in listed["knowledge"]] == [item["id"]]
        removed = await ok(await alice.call("DELETE", f"{path}/{item['id']}", role="summary"))
        assert removed == {"removed": 1}
        assert (await ok(await alice.call("GET", path, role="summary")))["knowledge"] == []

    async def test_errors_are_problems(self, alice: Caller) -> None:
        assert_problem(await alice.call("POST", "/v1/knowledge/items", {"knowledge_type": "document"}), 422, "invalid")
        assert_problem(await alice.call("POST", "/v1/knowledge/items", {"knowledge_type": "label", "text": "x"}), 422)
        assert_problem(await alice.call("GET", "/v1/knowledge/items/01900000-0000-7000-8000-000000000000"), 404)
        assert_problem(await alice.call("GET", "/v1/knowledge/items", limit=101), 422, "invalid")


class TestSearch:
    async def test_an_added_item_is_found(self, alice: Caller) -> None:
        items = [await add_item(alice, text) for text in TEXTS]
        result = await ok(await alice.call("POST", "/v1/knowledge/search", {"query": TEXTS[1], "k": 3}))
        assert result["hits"][0]["item"]["id"] == items[1]["id"] and result["embedding_model"]
        hybrid = await ok(await alice.call("POST", "/v1/knowledge/search/hybrid", {"query": "XR-7719", "k": 3}))
        assert hybrid["hits"][0]["item"]["id"] == items[2]["id"]
        filtered = await ok(await alice.call("POST", "/v1/knowledge/search",
                                             {"query": TEXTS[1], "filters": {"labels": ["topic:none"]}}))
        assert filtered["hits"] == []

    async def test_errors_are_problems(self, alice: Caller) -> None:
        assert_problem(await alice.call("POST", "/v1/knowledge/search", {"k": 3}), 422, "invalid")
        assert_problem(await alice.call("POST", "/v1/knowledge/search/hybrid", {"vector": [0.1, 0.2]}), 422)
        assert_problem(await alice.call("POST", "/v1/knowledge/search", {"vector": [0.1] * 10}), 422)


class TestIngest:
    async def test_ingest_a_thing_and_follow_its_job(self, alice: Caller) -> None:
        thing = await create(alice, "Wintering", properties={"content": " ".join(TEXTS)})
        job = await ok(await alice.call("POST", f"/v1/things/{thing['id']}/ingest", {"force": True}), 202)
        assert job["thing_id"] == thing["id"]
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            status = await ok(await alice.call("GET", "/v1/knowledge/ingest", job_ids=job["id"]))
            [state] = status["jobs"]
            if state["status"] not in ("queued", "running"):
                break
            assert asyncio.get_running_loop().time() < deadline, status
            await asyncio.sleep(0.2)
        assert state["status"] in ("done", "skipped"), state
        chunks = await ok(await alice.call("GET", "/v1/knowledge/items", source_thing_id=thing["id"], knowledge_type="chunk"))
        assert chunks["items"]
        assert_problem(await alice.call("POST", f"/v1/things/{thing['id']}/ingest",
                                        {"vector_only": True, "store_text": True}), 422, "invalid")

    async def test_gc(self, alice: Caller) -> None:
        report = await ok(await alice.call("POST", "/v1/knowledge/gc", {}))
        assert report == {"archived_orphans": 0, "purged_archived": 0}
