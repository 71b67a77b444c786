"""The real offline model end to end: a question through `POST /v1/agents/{slug}/chat` answered by SmolLM2-135M-Instruct
on the CPU, grounded in a knowledge item of the org that the agent's knowledge scope covers.

Nothing is scripted: the item is stored and embedded by the knowledge service, the run retrieves it (a citation
on the run), the model reads it and answers, and the execution record names the model. The fact is one no model
knows by heart, so an answer that holds it came from the item. The first load of the model takes ~20 s.
"""

import pytest

from tests.gateway.conftest import Caller, alice  # noqa: F401 (fixtures)
from tests.tenancy.conftest import unique  # noqa: F401 (fixture)

MODEL = "offline:smollm2-135m-instruct"
FACT = "The Zephyrine warehouse in Lisbon opens at 07:30 every weekday."
SYSTEM = "Answer the question using only the knowledge below. Cite the fact exactly."

pytestmark = pytest.mark.timeout(900)  # the first load of the model takes ~20 s on a quiet machine, minutes on a busy one


async def test_the_offline_model_answers_from_the_org_s_knowledge(alice: Caller) -> None:  # noqa: F811
    label = f"topic:{unique('warehouse')}"
    item = await alice.call("POST", "/v1/knowledge/items", {"knowledge_type": "chunk", "text": FACT, "labels": [label]})
    assert item.status_code == 201, item.text
    item_id = item.json()["items"][0]["id"]
    slug = unique("clerk")
    created = await alice.call("POST", "/v1/agents", {"slug": slug, "name": "Warehouse clerk", "config": {
        "model": MODEL, "system_prompt": SYSTEM, "temperature": 0, "max_tokens": 48,
        "knowledge": {"labels": [label], "k": 2}}})
    assert created.status_code == 201, created.text
    assert (await alice.call("POST", f"/v1/agents/{slug}/deploy")).status_code == 200

    answered = await alice.http.post(f"/v1/agents/{slug}/chat", json={"message": "When does the Zephyrine warehouse open?"},
                                     timeout=600)

    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["run"]["status"] == "completed", body["run"]
    assert "07:30" in body["reply"], body["reply"]
    assert body["model"] == MODEL
    assert [c["item_id"] for c in body["run"]["citations"]] == [item_id]
    executions = (await alice.call("GET", "/v1/executions", agent=slug)).json()["executions"]
    assert [(e["run_id"], e["model"]) for e in executions] == [(body["run_id"], MODEL)]
    assert executions[0]["input_tokens"] > 20 and executions[0]["output_tokens"] > 0
