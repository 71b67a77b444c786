"""Two platforms' worth of agents talking to each other (issue #19): agent X of org A delegates, through the official
a2a-sdk client, to an external agent that is agent Y of org B reached at the gateway's A2A URL, streamed; both
orgs' event logs show the exchange with `protocol: a2a`; and org A's own key cannot reach org B's agent (the
remote refuses it, and the model is told so), only org B's key can."""

import json
from typing import Any

from shared.contracts.agents import CHAT, EXTERNAL_ADD
from shared.runtime.client import BusClient
from tests.a2a.conftest import publish
from tests.agents.agent_fixtures import make_agent, wait_events
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account, unique

Y_ANSWER = "Org B's agent Y says: the fitness market grows 7% a year."


async def delegate_once(bus: BusClient, account: Account, server: ScriptedModel, slug: str, task: str) -> Any:
    """Agent X of `account`'s org, whose model calls the external agent's tool once; its tool result."""
    model, script = server.script({"tool_calls": [(f"a2a__{slug}", {"task": task})]}, {"text": "X relayed it"})
    agent = await make_agent(bus, account, model, delegates_to=[slug])
    reply = await bus.request(CHAT, {"slug": agent.slug, "message": "ask org B"}, account.ctx, timeout=90)
    assert reply.run.status == "completed" and reply.run.answer == "X relayed it"
    return agent, json.loads(script.tool_results()[0]["content"])


async def test_agent_of_org_a_delegates_to_agent_of_org_b_over_a2a(
    bus: BusClient, gateway: str, owner: Account, stranger: Account, model_server: ScriptedModel
) -> None:
    org_a, org_b = owner, stranger
    y = await publish(bus, gateway, org_b, model_server, {"text": Y_ANSWER})

    external = await bus.request(EXTERNAL_ADD, {"card_url": y.base_url, "slug": unique("org-b-y"),
                                                "api_key": org_b.key}, org_a.ctx, timeout=30)
    assert external.streaming and external.provider == "ONE on a bus"
    _, result = await delegate_once(bus, org_a, model_server, external.slug, "How fast does the fitness market grow?")
    assert result.get("status") == "completed", result
    assert result["answer"] == Y_ANSWER and result["streamed"] is True
    asked = [m["content"] for m in y.script.requests[0]["messages"] if m["role"] == "user"]
    assert "How fast does the fitness market grow?" in asked[-1]

    ours = await wait_events(bus, org_a, ["task_event", "communication_event"], 4, target_id=str(external.id))
    assert {(e.type, e.metadata.get("action") or e.metadata.get("direction")) for e in ours} >= {
        ("task_event", "delegated"), ("task_event", "completed"), ("communication_event", "outbound"),
        ("communication_event", "inbound")}
    assert all(e.metadata["protocol"] == "a2a" and e.metadata["platform"] == "ONE on a bus" for e in ours)
    theirs = await wait_events(bus, org_b, ["task_event", "communication_event"], 1, protocols=["a2a"])
    assert theirs and all(e.metadata.get("protocol") == "a2a" for e in theirs)

    served = len(y.script.requests)
    own_key = await bus.request(EXTERNAL_ADD, {"card_url": y.card_url, "slug": unique("with-a-key"),
                                               "api_key": org_a.key}, org_a.ctx, timeout=30)
    _, refused = await delegate_once(bus, org_a, model_server, own_key.slug, "let me in with org A's key")
    assert refused["error"]["code"] == "external_agent_auth_refused"
    no_key = await bus.request(EXTERNAL_ADD, {"card_url": f"{y.base_url}/", "slug": unique("no-key")}, org_a.ctx,
                               timeout=30)
    _, refused = await delegate_once(bus, org_a, model_server, no_key.slug, "let me in with no key")
    assert refused["error"]["code"] == "external_agent_auth_refused"
    assert len(y.script.requests) == served  # agent Y never ran for org A's key
