"""The cross-tenant attack suite: with org A's key, org B's ids and forged org ids get nothing through.

ONE table: a new route that takes an id, a body or a query is covered by adding its rows.
Placeholders name org B's ids (`{thing}`, `{deleted}`, `{connection}`, `{victim_org}`, a member
`{member}`, a key `{key}`, a policy `{policy}`) and A's own (`{own}`, `{own_org}`); a row refuses
(404/403 problem, or 422 for a body or query that names an org) or, for a list, answers nothing of
B's. Afterwards B's data is checked unchanged.
B also has an event, an item (`{item}`) carrying the label `VICTIM_LABEL` (B's labels are named in
paths, being org-scoped names) and linked to `{thing}`; A has `{own_item}`. A read of a foreign thing's
labels or knowledge answers an empty list that echoes the id A sent (`echoes`), as knowledge does.
"""

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared.runtime.client import BusClient
from tests.acp.conftest import Merchant, create_body
from tests.agents.scripted_model import ScriptedModel
from tests.gateway.conftest import Caller, assert_problem
from tests.gateway.test_agents_routes import new_agent
from tests.gateway.test_openapi import app_routes
from tests.gateway.test_things import create
from tests.tenancy.conftest import unique


@dataclass(frozen=True)
class Attack:
    method: str
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, Any] = field(default_factory=dict)
    refused: tuple[int, ...] = (404, 403)  # `()`: a list route, which answers 200 with nothing of B's
    echoes: str | None = None  # the placeholder of the id a 200 may echo back (A sent it), e.g. an empty list's thing_id


A2A_SEND = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
    "messageId": "attack-1", "role": "ROLE_USER", "parts": [{"text": "What is your secret?"}]}}}
FORGED = (422, 404, 403)  # a payload model refuses a field it does not define; an org id is never one
VICTIM_LABEL, VICTIM_TEXT = "topic:victim-secret", "Victim secret: the vault code is XR-7719"
WINDOW = {"since": "2026-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}

ATTACKS = [
    Attack("GET", "/v1/things/{thing}"),
    Attack("GET", "/v1/things/{thing}", query={"include": "references"}),
    Attack("PATCH", "/v1/things/{thing}", {"name": "pwned"}),
    Attack("PATCH", "/v1/things/{thing}", {"status": "archived"}),
    Attack("DELETE", "/v1/things/{thing}"),
    Attack("POST", "/v1/things/{deleted}/restore"),
    Attack("POST", "/v1/things/{thing}/restore"),
    Attack("POST", "/v1/things/{thing}/archive"),
    Attack("GET", "/v1/things/{thing}/neighbors"),
    Attack("GET", "/v1/things/{thing}/neighbors", query={"direction": "both", "depth": 2}),
    Attack("DELETE", "/v1/connections/{connection}"),
    Attack("PATCH", "/v1/connections/{connection}", {"strength": 0.1, "metadata": {"pwned": True}}),
    Attack("POST", "/v1/connections/{connection}/end", {}),
    Attack("POST", "/v1/connections", {"from_id": "{own}", "to_id": "{thing}", "type": "references"}),
    Attack("POST", "/v1/connections", {"from_id": "{thing}", "to_id": "{own}", "type": "references"}),
    Attack("POST", "/v1/connections", {"from_id": "{thing}", "to_id": "{thing2}", "type": "references"}),
    Attack("GET", "/v1/connections", query={"thing_id": "{thing}"}, refused=()),
    # a new thing's own connections (`ThingCreate.connections`) reach no thing of B's, and nothing is written
    Attack("POST", "/v1/things", {"type": "blog_post", "name": "linked", "connections": [
        {"to_id": "{thing}", "type": "references"}]}),
    Attack("POST", "/v1/things", {"type": "blog_post", "name": "linked", "connections": [
        {"from_id": "{thing}", "type": "references"}]}),
    Attack("POST", "/v1/things/batch", {"things": [{"type": "blog_post", "name": "linked", "connections": [
        {"from_id": "{thing}", "to_id": "{thing2}", "type": "references"}]}]}),
    Attack("GET", "/v1/things", query={"text": "Victim"}, refused=()),
    # the event log: B's events never show, whatever names B's thing
    Attack("GET", "/v1/events", refused=()),
    Attack("GET", "/v1/events", query={"thing_id": "{thing}"}, refused=()),
    Attack("GET", "/v1/events", query={"target_id": "{thing}", "order": "desc"}, refused=()),
    Attack("GET", "/v1/things/{thing}/history", refused=()),
    Attack("GET", "/v1/events/dead-letters", refused=()),
    Attack("GET", "/v1/events/stream", query={"follow": "false"}, refused=()),  # the SSE tail: it ends once caught up
    Attack("GET", "/v1/events/stream", query={"thing_id": "{thing}", "follow": "false"}, refused=()),
    Attack("GET", "/v1/events/stream", query={"target_id": "{thing}", "after": 0, "follow": "false"}, refused=()),
    # knowledge: B's labels (by name), items, links and jobs
    Attack("GET", f"/v1/labels/{VICTIM_LABEL}"),
    Attack("POST", f"/v1/labels/{VICTIM_LABEL}/aliases", {"alias": "topic:hijacked"}),
    Attack("POST", f"/v1/labels/{VICTIM_LABEL}/deprecate"),
    Attack("DELETE", f"/v1/labels/{VICTIM_LABEL}"),
    Attack("GET", "/v1/labels", refused=()),
    Attack("POST", "/v1/things/{thing}/labels", {"labels": ["topic:pwned"]}),
    Attack("DELETE", "/v1/things/{thing}/labels", query={"labels": VICTIM_LABEL}, refused=(), echoes="thing"),
    Attack("GET", "/v1/things/{thing}/labels", refused=(), echoes="thing"),
    Attack("GET", "/v1/knowledge/things", query={"labels": VICTIM_LABEL}, refused=()),
    Attack("GET", "/v1/knowledge/items/{item}"),
    Attack("GET", "/v1/knowledge/items/{item}", query={"include_embedding": "true"}),
    Attack("DELETE", "/v1/knowledge/items/{item}"),
    Attack("POST", "/v1/knowledge/items/{item}/restore"),
    Attack("GET", "/v1/knowledge/items", refused=()),
    Attack("GET", "/v1/knowledge/items", query={"source_thing_id": "{thing}"}, refused=()),
    Attack("POST", "/v1/things/{own}/knowledge", {"knowledge_id": "{item}", "role": "summary"}),
    Attack("POST", "/v1/things/{thing}/knowledge", {"knowledge_id": "{own_item}", "role": "summary"}),
    Attack("GET", "/v1/things/{thing}/knowledge", refused=(), echoes="thing"),
    Attack("DELETE", "/v1/things/{thing}/knowledge/{item}", query={"role": "summary"}, refused=()),  # removed: 0
    Attack("POST", "/v1/things/{thing}/ingest", {"force": True}),
    Attack("GET", "/v1/knowledge/ingest", query={"thing_id": "{thing}"}, refused=()),
    Attack("POST", "/v1/knowledge/search", {"query": VICTIM_TEXT, "k": 100}, refused=()),
    Attack("POST", "/v1/knowledge/search", {"query": VICTIM_TEXT, "filters": {"source_thing_id": "{thing}"}}, refused=()),
    Attack("POST", "/v1/knowledge/search/hybrid", {"query": VICTIM_TEXT, "boost_labels": [VICTIM_LABEL]}, refused=()),
    # jobs: B's job (pending, scheduled later) is neither read, listed, cancelled nor retried
    Attack("GET", "/v1/jobs/{job}"),
    Attack("POST", "/v1/jobs/{job}/cancel"),
    Attack("POST", "/v1/jobs/{job}/retry"),
    Attack("POST", "/v1/jobs/{job}/retry", {"run_at": "2030-01-01T00:00:00Z"}),
    Attack("GET", "/v1/jobs", refused=()),
    Attack("GET", "/v1/jobs", query={"state": "pending", "queue": "default"}, refused=()),
    # social: B's things are neither followed, reacted to nor commented on, nor do they follow or react for A
    Attack("POST", "/v1/things/{thing}/follow"),
    Attack("POST", "/v1/things/{own}/follow", {"follower_id": "{thing}"}),
    Attack("DELETE", "/v1/things/{thing}/follow"),
    Attack("POST", "/v1/things/{thing}/reactions", {"kind": "like"}),
    Attack("POST", "/v1/things/{own}/reactions", {"kind": "like", "reactor_id": "{thing}"}),
    Attack("DELETE", "/v1/things/{thing}/reactions/like"),
    Attack("POST", "/v1/things/{thing}/comments", {"content": "pwned"}),
    Attack("POST", "/v1/things/{own}/comments", {"content": "pwned", "author_id": "{thing}"}),
    # scheduling: B's things are no meeting of A's, B's reminder is neither listed nor cancelled, B's people
    # are no participants of A's meetings
    Attack("GET", "/v1/meetings/{thing}"),
    Attack("POST", "/v1/meetings/{thing}/cancel"),
    Attack("POST", "/v1/meetings/{thing}/reschedule", {"start_time": "2099-01-01T10:00:00Z",
                                                       "end_time": "2099-01-01T11:00:00Z"}),
    Attack("POST", "/v1/meetings", {"title": "spy", "start_time": "2099-01-01T10:00:00Z",
                                    "end_time": "2099-01-01T11:00:00Z", "participant_ids": ["{thing}"]}),
    Attack("POST", "/v1/reminders/{reminder}/cancel"),
    Attack("GET", "/v1/reminders", refused=()),
    Attack("GET", "/v1/reminders", query={"meeting_id": "{thing}"}, refused=()),
    # external A2A agents: B's (by its slug) is neither read, re-credentialed, refreshed nor removed
    Attack("GET", "/v1/external-agents/{external_agent}"),
    Attack("PUT", "/v1/external-agents/{external_agent}/credentials", {"api_key": "pwned-key"}),
    Attack("POST", "/v1/external-agents/{external_agent}/refresh"),
    Attack("POST", "/v1/external-agents/{external_agent}/archive"),
    Attack("GET", "/v1/external-agents", refused=()),
    Attack("GET", "/v1/external-agents", query={"include_archived": True}, refused=()),
    Attack("POST", "/v1/external-agents", {"card_url": "http://127.0.0.1:9/", "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("GET", "/v1/external-agents", query={"org_id": "{victim_org}"}, refused=FORGED),
    # agents: B's agent (by slug), its configs and prompts, B's conversation, its messages and run
    Attack("GET", "/v1/agents/{agent}"),
    Attack("PATCH", "/v1/agents/{agent}", {"name": "pwned"}),
    Attack("PUT", "/v1/agents/{agent}/config", {"config": {"system_prompt": "Leak everything."}}),
    Attack("GET", "/v1/agents/{agent}/versions"),
    Attack("POST", "/v1/agents/{agent}/deploy"),
    Attack("POST", "/v1/agents/{agent}/archive"),
    Attack("POST", "/v1/agents/{agent}/prompts", {"prompt_id": "{prompt}"}),
    Attack("POST", "/v1/agents/{own_agent}/prompts", {"prompt_id": "{prompt}"}),
    Attack("DELETE", "/v1/agents/{agent}/prompts/{prompt}"),
    Attack("POST", "/v1/agents/{agent}/chat", {"message": "What do you know?"}),
    Attack("POST", "/v1/agents/{agent}/chat", {"message": "What do you know?", "stream": True}),
    Attack("POST", "/v1/agents/{own_agent}/chat", {"message": "Continue", "threadId": "{conversation}"}),
    Attack("GET", "/v1/prompts/{prompt}"),
    Attack("PATCH", "/v1/prompts/{prompt}", {"template": "pwned"}),
    Attack("POST", "/v1/prompts/{prompt}/archive"),
    Attack("POST", "/v1/prompts/{prompt}/render", {"variables": {}}),
    Attack("GET", "/v1/prompts", refused=()),
    Attack("POST", "/v1/conversations", {"title": "Spy", "agents": ["{agent}"]}),
    Attack("GET", "/v1/conversations/{conversation}"),
    Attack("GET", "/v1/conversations/external/{external}"),
    Attack("PATCH", "/v1/conversations/{conversation}", {"status": "closed"}),
    Attack("POST", "/v1/conversations/{conversation}/participants", {"kind": "agent", "agent_slug": "{own_agent}"}),
    Attack("DELETE", "/v1/conversations/{conversation}/participants", query={"kind": "agent", "member_id": "{agent_thing}"}),
    Attack("GET", "/v1/conversations/{conversation}/messages"),
    Attack("POST", "/v1/conversations/{conversation}/messages", {"content": "pwned"}),
    Attack("POST", "/v1/conversations/{conversation}/search", {"query": "victim"}),
    Attack("GET", "/v1/conversations", refused=()),
    Attack("GET", "/v1/agents", query={"include_archived": "true"}, refused=()),
    Attack("GET", "/v1/runs/{run}"),
    Attack("GET", "/v1/runs/{run}/steps"),
    Attack("GET", "/v1/runs/{run}/events"),
    Attack("GET", "/v1/runs", query={"agent": "{agent}"}),
    Attack("GET", "/v1/runs", query={"conversation_id": "{conversation}"}, refused=()),
    Attack("GET", "/v1/runs", refused=()),
    Attack("GET", "/v1/executions", query={"agent": "{agent}"}),
    Attack("GET", "/v1/executions", refused=()),
    Attack("GET", "/v1/executions/stats", refused=()),
    # B's external thread id names A's own new conversation: an org's external ids are its own (so after the GET above)
    Attack("POST", "/v1/agents/{own_agent}/chat", {"message": "Hi", "externalThreadId": "{external}"}, refused=()),
    # tenancy: B's org, members, keys and policies
    Attack("GET", "/v1/orgs/{victim_org}"),
    Attack("PATCH", "/v1/orgs/{victim_org}", {"name": "pwned"}),
    Attack("PATCH", "/v1/orgs/{victim_org}", {"settings": {"allow_signups": True}}),
    Attack("GET", "/v1/orgs/{victim_org}/members"),
    Attack("POST", "/v1/orgs/{victim_org}/invites", {"email": "spy@example.test", "role": "org_owner"}),
    Attack("PATCH", "/v1/orgs/{victim_org}/members/{member}", {"role": "customer"}),
    Attack("PATCH", "/v1/orgs/{own_org}/members/{member}", {"role": "customer"}),
    Attack("DELETE", "/v1/orgs/{victim_org}/members/{member}"),
    Attack("DELETE", "/v1/orgs/{own_org}/members/{member}"),
    Attack("DELETE", "/v1/orgs/{victim_org}/members/{member}/two-factor"),
    Attack("DELETE", "/v1/orgs/{own_org}/members/{member}/two-factor"),
    Attack("DELETE", "/v1/keys/{key}"),
    Attack("DELETE", "/v1/policies/{policy}"),
    # access rules: B's field masks and scope rules are not A's to remove or list, nor to set in B
    Attack("DELETE", "/v1/access/masks/{mask}"),
    Attack("DELETE", "/v1/access/scopes/{scope}"),
    Attack("GET", "/v1/access/masks", refused=()),
    Attack("GET", "/v1/access/scopes", query={"role": "customer"}, refused=()),
    Attack("POST", "/v1/access/masks", {"role": "customer", "thing_type": "*", "field": "properties.x",
                                        "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/access/scopes", {"role": "customer", "thing_type": "*", "rule": "own",
                                         "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/orgs/{victim_org}/quotas"),
    Attack("PUT", "/v1/orgs/{victim_org}/quotas/exports", {"limit": 0}),
    Attack("PUT", "/v1/orgs/{victim_org}/rate-limits", {"scope": "org", "max_calls": 1, "window_seconds": 1}),
    Attack("GET", "/v1/orgs", refused=(403,)),
    Attack("GET", "/v1/keys", query={"everyone": "true"}, refused=()),
    Attack("GET", "/v1/roles", refused=()),
    Attack("GET", "/v1/rate-limits", refused=()),
    Attack("GET", "/v1/orgs/{own_org}/members", refused=()),
    # x402: paid routes name the seller; B priced nothing, and A's org does not sell B's thing or agent
    Attack("POST", "/x402/{victim_org}/knowledge/search", {"query": VICTIM_TEXT}, refused=(404,)),
    Attack("POST", "/x402/{victim_org}/agents/{agent}/chat", {"message": "What do you know?"}, refused=(404,)),
    # A2A: B's agent's A2A server refuses A's key on both bindings (403); under A's org B's agent is not there (404)
    Attack("POST", "/a2a/{victim_org}/{agent}", A2A_SEND, refused=(403,)),
    Attack("POST", "/a2a/{victim_org}/{agent}/", A2A_SEND, refused=(403,)),
    Attack("POST", "/a2a/{victim_org}/{agent}/message:send", A2A_SEND["params"], refused=(403,)),
    Attack("POST", "/a2a/{victim_org}/{agent}/message:stream", A2A_SEND["params"], refused=(403,)),
    Attack("GET", "/a2a/{victim_org}/{agent}/tasks", refused=(403,)),
    Attack("GET", "/a2a/{victim_org}/{agent}/tasks/{run}", refused=(403,)),
    Attack("POST", "/a2a/{victim_org}/{agent}/tasks/{run}:cancel", refused=(403,)),
    Attack("GET", "/a2a/{victim_org}/{agent}/tasks/{run}:subscribe", refused=(403,)),
    Attack("GET", "/a2a/{victim_org}/{agent}/tasks/{run}/pushNotificationConfigs", refused=(403,)),
    Attack("POST", "/a2a/{victim_org}/{agent}/tasks/{run}/pushNotificationConfigs", {"url": "http://127.0.0.1:9/"},
           refused=(403,)),
    Attack("POST", "/a2a/{victim_org_slug}/{agent}", A2A_SEND, refused=(403,)),  # the URL by the org's slug
    Attack("POST", "/a2a/{victim_org_slug}/{agent}/message:send", A2A_SEND["params"], refused=(403,)),
    Attack("GET", "/a2a/{victim_org_slug}/{agent}/tasks/{run}", refused=(403,)),
    Attack("POST", "/a2a/{victim_org_slug}/{agent}/tasks/{run}:cancel", refused=(403,)),
    Attack("POST", "/a2a/{own_org}/{agent}", A2A_SEND, refused=(404,)),
    Attack("GET", "/a2a/{own_org}/{agent}/tasks", refused=(404,)),
    Attack("POST", "/x402/{own_org}/agents/{agent}/chat", {"message": "What do you know?"}, refused=(404,)),
    Attack("GET", "/x402/{victim_org}/products/{thing}/content", refused=(404,)),
    Attack("GET", "/x402/{own_org}/products/{thing}/content", refused=(404,)),
    # x402 `/v1` reads sold per request: B priced none (404); under A's org A priced none either (404)
    Attack("GET", "/x402/{victim_org}/v1/things", query={"type": "report"}, refused=(404,)),
    Attack("GET", "/x402/{victim_org}/v1/things/{thing}", refused=(404,)),
    Attack("GET", "/x402/{own_org}/v1/things/{thing}", refused=(404,)),
    Attack("GET", "/x402/{victim_org}/v1/things/{thing}/neighbors", refused=(404,)),
    Attack("GET", "/x402/{victim_org}/v1/things/{thing}/knowledge", refused=(404,)),
    Attack("GET", "/x402/{victim_org}/v1/knowledge/items", refused=(404,)),
    Attack("GET", "/x402/{victim_org}/v1/knowledge/items/{item}", refused=(404,)),
    Attack("GET", "/x402/{own_org}/v1/knowledge/items/{item}", refused=(404,)),
    Attack("POST", "/x402/{victim_org}/v1/knowledge/search", {"query": VICTIM_TEXT}, refused=(404,)),
    Attack("POST", "/x402/{victim_org}/v1/knowledge/search/hybrid", {"query": VICTIM_TEXT}, refused=(404,)),
    Attack("GET", "/v1/x402/prices", refused=()),
    Attack("PUT", "/v1/x402/prices", {"resource": "knowledge/search", "amount": 1, "pay_to": "0x" + "ab" * 20,
                                      "org_id": "{victim_org}"}, refused=FORGED),
    Attack("DELETE", "/v1/x402/prices/knowledge%2Fsearch", refused=(404,)),
    Attack("PUT", "/v1/x402/budgets/{agent_thing}", {"per_call": 1, "per_day": 1}, refused=(404,)),
    Attack("PUT", "/v1/x402/budgets/{agent_thing}", {"per_call": 1, "per_day": 1, "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("GET", "/v1/x402/budgets/{agent_thing}", refused=(404,)),
    # AP2: B's checkout, receipts, agents and trust list; B's public keys show nothing else of B
    Attack("POST", "/v1/ap2/checkouts/{ap2_checkout}/mandate", {"mandate": "x.y.z~~a.b.c~"}, refused=(404,)),
    Attack("GET", "/v1/ap2/receipts/{ap2_checkout}", refused=(404,)),
    Attack("POST", "/v1/ap2/mandates", {"agent_id": "{agent_thing}", "constraints": [
        {"type": "payment.amount_range", "currency": "USD", "max": 1}]}, refused=(404,)),
    Attack("POST", "/v1/ap2/mandates/{ap2_mandate}/revoke", refused=(404,)),
    Attack("GET", "/v1/ap2/trust", refused=()),
    Attack("GET", "/v1/ap2/{victim_org}/jwks.json", refused=()),
    Attack("POST", "/v1/ap2/trust", {"issuer": "x", "jwks": {"keys": []}, "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/ap2/checkouts", {"amount": 1, "currency": "USD", "org_id": "{victim_org}"}, refused=FORGED),
    # discount codes ACP checkout applies: B's code is not found under A's key, nor listed, nor made for B
    Attack("GET", "/v1/discounts/{discount}", refused=(404,)),
    Attack("PATCH", "/v1/discounts/{discount}", {"active": False}, refused=(404,)),
    Attack("GET", "/v1/discounts", refused=()),
    Attack("POST", "/v1/discounts", {"code": "FORGED", "name": "x", "kind": "percentage", "percent_off": 100,
                                     "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/packs", refused=()),  # tests/packs/test_gateway.py: B's installed pack, out of A's reach
    Attack("DELETE", "/v1/packs/tutoring", refused=(404,)),
    Attack("POST", "/v1/packs", {"name": "tutoring", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/ap2/receipts", refused=()),
    Attack("GET", "/v1/ap2/mandates", query={"agent_id": "{agent_thing}"}, refused=()),
    Attack("GET", "/v1/ap2/mandates/held", query={"agent_id": "{agent_thing}"}, refused=()),  # B's agent holds one
    Attack("POST", "/v1/ap2/acp/checkout_sessions/{acp_session}/checkout", refused=(404,)),  # B's, ready for payment
    Attack("POST", "/v1/ap2/acp/checkout_sessions/{acp_session}/checkout", {"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/ap2/v1/mandates", {"type": "IntentMandate", "org_id": "{victim_org}", "mandate": {
        "natural_language_description": "x", "intent_expiry": "2100-01-01T00:00:00Z"}}, refused=FORGED),
    # inbound webhooks: B's source is neither read, rotated, deleted nor listed; a webhook to it needs B's signature
    Attack("GET", "/v1/webhook-sources/{webhook_source}", refused=(404,)),
    Attack("DELETE", "/v1/webhook-sources/{webhook_source}", refused=(404,)),
    Attack("POST", "/v1/webhook-sources/{webhook_source}/rotate", {"grace_seconds": 0}, refused=(404,)),
    Attack("GET", "/v1/webhook-sources", refused=()),
    Attack("POST", "/v1/webhook-sources", {"name": "forged", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/webhooks/in/{webhook_source}", {"type": "payment.succeeded", "data": {}}, refused=(401,)),
    # plugins: installs are the caller's org's own (tests/plugins/test_edges.py: B's install, by name, out of A's
    # reach); the registry is the platform's, readable by all, imported only by a platform owner
    *(Attack(method, f"/v1/plugins/installed/plugin-victim{suffix}", body, refused=(404,)) for method, suffix, body in (
        ("GET", "", None), ("DELETE", "", None), ("PATCH", "/settings", {"settings": {"baseUrl": "http://pwned"}}),
        ("POST", "/activate", None), ("POST", "/deactivate", None), ("POST", "/update", None),
        ("POST", "/actions/forecast", {"arguments": {}}))),
    Attack("GET", "/v1/plugins/installed", refused=()),
    Attack("POST", "/v1/plugins/installed", {"name": "plugin-victim", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/plugins", refused=()),
    Attack("GET", "/v1/plugins/search", query={"query": "victim"}, refused=()),
    Attack("GET", "/v1/plugins/registry/plugin-victim", refused=(404,)),
    Attack("POST", "/v1/plugins/import", {"sample": True}, refused=(403,)),
    # forged org ids in bodies and query strings
    Attack("POST", "/v1/things", {"type": "blog_post", "name": "Victim forged", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/things/batch", {"things": [{"type": "blog_post", "name": "Forged", "org_id": "{victim_org}"}]},
           refused=FORGED),
    Attack("POST", "/v1/things/batch", {"org_id": "{victim_org}", "things": [{"type": "blog_post", "name": "Forged"}]},
           refused=FORGED),
    Attack("PATCH", "/v1/things/{own}", {"name": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/connections", {"from_id": "{own}", "to_id": "{own}", "type": "references",
                                       "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/things", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/things/{thing}", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/connections", query={"thing_id": "{thing}", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/events", {"type": "user_login", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/events/batch", {"events": [{"type": "user_login", "org_id": "{victim_org}"}]}, refused=FORGED),
    Attack("GET", "/v1/events", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/things/{thing}/history", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/events/stats", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/events/daily-counts", query={**WINDOW, "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/events/revenue", query={**WINDOW, "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/events/dead-letters", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/events/stream", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/labels", {"name": "topic:forged", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/labels", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/things/{own}/labels", {"labels": ["topic:forged"], "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/knowledge/things", query={"labels": VICTIM_LABEL, "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/knowledge/items", {"knowledge_type": "chunk", "text": "x", "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("POST", "/v1/knowledge/items/batch", {"items": [{"knowledge_type": "chunk", "text": "x",
                                                            "org_id": "{victim_org}"}]}, refused=FORGED),
    Attack("GET", "/v1/knowledge/items", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/knowledge/items/{own_item}", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/things/{own}/knowledge", {"knowledge_id": "{own_item}", "role": "summary",
                                                  "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/things/{own}/knowledge", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/things/{own}/ingest", {"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/knowledge/ingest", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/knowledge/search", {"query": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/knowledge/search", {"query": "x", "filters": {"org_id": "{victim_org}"}}, refused=FORGED),
    Attack("POST", "/v1/knowledge/search/hybrid", {"query": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/knowledge/gc", {"org_id": "{victim_org}"}, refused=FORGED),
    Attack("PATCH", "/v1/orgs/{own_org}", {"name": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/orgs/{own_org}/invites", {"email": "spy@example.test", "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("PATCH", "/v1/orgs/{own_org}/members/{member}", {"role": "customer", "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("PUT", "/v1/orgs/{own_org}/quotas/exports", {"limit": 0, "org_id": "{victim_org}"}, refused=FORGED),
    Attack("PUT", "/v1/orgs/{own_org}/rate-limits", {"scope": "org", "max_calls": 1, "window_seconds": 1,
                                                     "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/keys", {"name": "spy", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/roles", {"name": "spy", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/roles/org_user/policies", {"resource": "things", "action": "read", "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("PATCH", "/v1/me", {"current_org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/keys", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/orgs", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/jobs", {"kind": "notification.send", "payload": {"message": "x"}, "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("GET", "/v1/jobs", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/things/{own}/follow", {"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/things/{own}/comments", {"content": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/meetings", {"title": "x", "start_time": "2099-01-01T10:00:00Z", "end_time": "2099-01-01T11:00:00Z",
                                    "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/reminders", {"remind_at": "2099-01-01T10:00:00Z", "message": "x", "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("GET", "/v1/reminders", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/jobs/{job}/retry", {"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/agents", {"slug": "forged", "name": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/agents", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/agents/{own_agent}/chat", {"message": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("POST", "/v1/prompts", {"name": "x", "step": "hook", "template": "x", "org_id": "{victim_org}"},
           refused=FORGED),
    Attack("POST", "/v1/conversations", {"title": "x", "org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/runs", query={"org_id": "{victim_org}"}, refused=FORGED),
    Attack("GET", "/v1/executions/stats", query={"org_id": "{victim_org}"}, refused=FORGED),
]


def fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


@pytest.fixture
async def victim(bob: Caller, http: httpx.AsyncClient, model_server: ScriptedModel,  # noqa: F811
                 bus: BusClient) -> dict[str, Any]:
    """Org B's data: two things, a link between them, a soft-deleted thing; a member, a key, a policy."""
    thing, thing2 = await create(bob, "Victim one"), await create(bob, "Victim two")
    agents = await _victim_agents(bob, model_server)
    deleted = await create(bob, "Victim deleted")
    await bob.call("DELETE", f"/v1/things/{deleted['id']}")
    link = await bob.call("POST", "/v1/connections", {"from_id": thing["id"], "to_id": thing2["id"], "type": "references"})
    assert link.status_code == 201, link.text
    issued = await bob.call("POST", f"/v1/orgs/{bob.account.org_id}/invites", {"email": f"{unique('m')}@victim.test"})
    joined = await http.post("/v1/invites/accept", json={"token": issued.json()["token"]})
    key = await bob.call("POST", "/v1/keys", {"name": "victim"})
    policy = await bob.call("POST", "/v1/roles/org_user/policies", {"resource": "reports", "action": "read"})
    assert joined.status_code == key.status_code == policy.status_code == 201, (joined.text, key.text, policy.text)
    return {"thing": thing, "thing2": thing2, "deleted": deleted, "connection": link.json(), **await _victim_knowledge(bob, thing),
            "member": {"id": joined.json()["person"]["id"]}, "key": {"id": key.json()["info"]["key_id"]},
            "policy": policy.json(), "job": await _victim_job(bob), "reminder": await _victim_reminder(bob), **agents,
            **await _victim_ap2(bob, agents["agent_thing"]["id"]), **await _victim_discount(bob),
            **await _victim_acp_session(bob, bus),
            **await _victim_webhook_source(bob), **await _victim_access(bob)}


async def test_org_a_gets_nothing_of_org_b(alice: Caller, bob: Caller, victim: dict[str, Any],
                                           model_server: ScriptedModel) -> None:  # noqa: F811
    own = await create(alice, "Own")
    own_agent = await new_agent(alice, model_server.script({"text": "Nothing of B."})[0])
    own_item = await alice.call("POST", "/v1/knowledge/items", {"knowledge_type": "chunk", "text": "own"})
    ids = {name: row["id"] for name, row in victim.items()} | {
        "own": own["id"], "own_org": str(alice.account.org_id), "victim_org": str(bob.account.org_id),
        "own_item": own_item.json()["items"][0]["id"], "own_agent": own_agent["slug"]}
    victim_ids = {row["id"] for row in victim.values()} | {str(bob.account.org_id)}
    tenancy_before = await _tenancy_of(bob)
    knowledge_before = await _knowledge_of(bob, victim)
    agents_before = await _agents_of(bob, victim)
    for attack in ATTACKS:
        response = await alice.call(attack.method, fill(attack.path, ids), fill(attack.body, ids),
                                    **fill(attack.query, ids))
        where = f"{attack.method} {attack.path} {attack.body} {attack.query}"
        if attack.refused:
            assert response.status_code in attack.refused, f"{where}: {response.status_code} {response.text}"
            assert_problem(response, response.status_code)
        else:
            assert response.status_code == 200, f"{where}: {response.text}"
            echoed = {ids[attack.echoes]} if attack.echoes else set()
            assert not (victim_ids - echoed) & set(_ids_in(_body(response))), f"{where} leaked: {response.text}"
        assert bob.account.key not in response.text

    await _unchanged(bob, victim)
    assert (await bob.call("GET", f"/v1/jobs/{victim['job']['id']}")).json() == victim["job"], "B's job changed"
    assert (await bob.call("GET", "/v1/reminders")).json()["reminders"] == [victim["reminder"]], "B's reminder changed"
    assert await _knowledge_of(bob, victim) == knowledge_before, "B's labels, items or links changed"
    assert await _agents_of(bob, victim) == agents_before, "B's agents, prompts, conversations or runs changed"
    assert await _tenancy_of(bob) == tenancy_before, "B's org, members, keys, roles, quotas or rate limits changed"


async def _unchanged(bob: Caller, victim: dict[str, Any]) -> None:
    for name in ("thing", "thing2"):
        now = (await bob.call("GET", f"/v1/things/{victim[name]['id']}")).json()["thing"]
        assert now == victim[name], f"{name} changed"
    assert_problem(await bob.call("GET", f"/v1/things/{victim['deleted']['id']}"), 404)  # still deleted
    links = (await bob.call("GET", "/v1/connections", thing_id=victim["thing"]["id"])).json()["connections"]
    assert links == [victim["connection"]], "B's links changed"
    agents_things = {victim["agent_thing"]["id"], victim["conversation"]["id"],  # an agent, a conversation: things
                     victim["external_agent_thing"]["id"]}  # and an external agent
    names = sorted(t["name"] for t in (await bob.call("GET", "/v1/things")).json()["things"]
                   if t["id"] not in agents_things  # nor B's AP2 mandate, nor its ACP session's product
                   and t["type"] not in ("mandate", "product"))
    assert names == ["Victim one", "Victim two"], "something was created or removed in B"


async def _tenancy_of(bob: Caller) -> dict[str, Any]:
    """What of B's tenancy an attack could change (not usage or last use, which B's own requests move)."""
    org_path = f"/v1/orgs/{bob.account.org_id}"
    org = (await bob.call("GET", org_path)).json()
    keys = (await bob.call("GET", "/v1/keys", everyone="true")).json()["keys"]
    return {
        "org": {k: org[k] for k in ("name", "slug", "status", "plan", "settings", "limits")},
        "members": (await bob.call("GET", f"{org_path}/members")).json(),
        "keys": sorted((k["key_id"], k["name"], k["revoked_at"]) for k in keys),
        "roles": (await bob.call("GET", "/v1/roles")).json(),
        "quotas": [{k: q[k] for k in ("metric", "limit")} for q in (await bob.call("GET", f"{org_path}/quotas")).json()["quotas"]],
        "rate_limits": (await bob.call("GET", "/v1/rate-limits")).json(),
        "webhook_sources": (await bob.call("GET", "/v1/webhook-sources")).json(),
    }


async def _victim_knowledge(bob: Caller, thing: dict[str, Any]) -> dict[str, Any]:
    """Org B's event (ingested), label on its thing, item linked to it; and B's view of them, to compare after."""
    event = await bob.call("POST", "/v1/events", {"type": "content_viewed", "target_id": thing["id"]})
    item = await bob.call("POST", "/v1/knowledge/items", {"knowledge_type": "chunk", "text": VICTIM_TEXT,
                                                          "labels": [VICTIM_LABEL]})
    labeled = await bob.call("POST", f"/v1/things/{thing['id']}/labels", {"labels": [VICTIM_LABEL]})
    assert event.status_code == item.status_code == 201 and labeled.status_code == 200, (event.text, item.text)
    item_id = item.json()["items"][0]["id"]
    linked = await bob.call("POST", f"/v1/things/{thing['id']}/knowledge", {"knowledge_id": item_id, "role": "summary"})
    assert linked.status_code == 201, linked.text
    for _ in range(150):  # appends are ingested asynchronously
        if (await bob.call("GET", "/v1/events", thing_id=thing["id"])).json()["events"]:
            break
        await asyncio.sleep(0.1)
    victim = {"event": {"id": event.json()["id"]}, "item": {"id": item_id}, "link": linked.json()}
    return victim


async def _victim_access(bob: Caller) -> dict[str, Any]:
    mask = await bob.call("POST", "/v1/access/masks", {"role": "customer", "thing_type": "*", "field": "properties.x"})
    scope = await bob.call("POST", "/v1/access/scopes", {"role": "customer", "thing_type": "course", "rule": "own"})
    assert mask.status_code == scope.status_code == 200, (mask.text, scope.text)
    return {"mask": mask.json(), "scope": scope.json()}


async def _victim_job(bob: Caller) -> dict[str, Any]:
    """Org B's job, a reminder due in 2099 (so no worker changes it during the attacks)."""
    job = await bob.call("POST", "/v1/jobs", {"kind": "notification.send", "payload": {"message": "victim reminder"},
                                              "run_at": "2099-01-01T00:00:00Z", "idempotency_key": "victim-job"})
    assert job.status_code == 201, job.text
    return job.json()


async def _victim_reminder(bob: Caller) -> dict[str, Any]:
    """Org B's reminder, due in 2099 (no worker fires it during the attacks)."""
    made = await bob.call("POST", "/v1/reminders", {"remind_at": "2099-01-01T00:00:00Z", "message": "victim reminder"})
    assert made.status_code == 201, made.text
    return made.json()


async def _victim_discount(bob: Caller) -> dict[str, Any]:
    """Org B's discount code (its code is its id on the routes)."""
    made = await bob.call("POST", "/v1/discounts", {"code": "VICTIM50", "name": "Victim", "kind": "percentage",
                                                    "percent_off": 50})
    assert made.status_code == 201, made.text
    return {"discount": {"id": made.json()["code"]}}


async def _victim_webhook_source(bob: Caller) -> dict[str, Any]:
    """Org B's inbound webhook source (tests/webhooks/ sends it a webhook signed with A's secret)."""
    made = await bob.call("POST", "/v1/webhook-sources", {"name": "victim-idp", "mappings": {
        "user.created": {"action": "invite"}}})
    assert made.status_code == 201, made.text
    return {"webhook_source": {"id": made.json()["source"]["id"]}}


async def _victim_ap2(bob: Caller, agent_id: str) -> dict[str, Any]:
    """Org B's AP2 checkout (its merchant-signed JWT and nonce) and a mandate it granted its agent."""
    made = await bob.call("POST", "/v1/ap2/checkouts", {"amount": 1500, "currency": "USD"})
    granted = await bob.call("POST", "/v1/ap2/mandates", {"agent_id": agent_id, "constraints": [
        {"type": "payment.amount_range", "currency": "USD", "max": 100}]})
    assert made.status_code == granted.status_code == 201, (made.text, granted.text)
    return {"ap2_checkout": {"id": made.json()["id"]}, "ap2_mandate": {"id": granted.json()["id"]}}


async def _victim_acp_session(bob: Caller, bus: BusClient) -> dict[str, Any]:
    """Org B's ACP checkout session, ready for payment (the merchant could sign an AP2 checkout for it)."""
    shop = Merchant(bob, bus)
    session = await shop.create(create_body(await shop.product("Victim e-book", 1000, tax_category="digital"),
                                            buyer={"email": "victim@example.com"}))
    assert session["status"] == "ready_for_payment", session
    return {"acp_session": {"id": session["id"]}}


async def _victim_agents(bob: Caller, model_server: ScriptedModel) -> dict[str, Any]:  # noqa: F811
    """Org B's agent (with a prompt), a conversation known by an external thread id, and a finished run in it."""
    agent = await new_agent(bob, model_server.script({"text": "Victim secret: the vault code is XR-7719"})[0])
    prompt = await bob.call("POST", "/v1/prompts", {"name": "Victim prompt", "step": "hook", "template": "Hi {{name}}"})
    external = unique("victim-thread")
    conversation = await bob.call("POST", "/v1/conversations", {"title": "Victim chat", "external_thread_id": external})
    assert prompt.status_code == conversation.status_code == 201, (prompt.text, conversation.text)
    attached = await bob.call("POST", f"/v1/agents/{agent['slug']}/prompts", {"prompt_id": prompt.json()["id"]})
    chat = await bob.call("POST", f"/v1/agents/{agent['slug']}/chat", {"message": "Secret?",
                                                                       "threadId": conversation.json()["id"]})
    assert attached.status_code == chat.status_code == 200, (attached.text, chat.text)
    org = await bob.call("GET", f"/v1/orgs/{bob.account.org_id}")
    remote = await bob.call("POST", "/v1/external-agents", {  # B's own agent, as an external A2A agent of B
        "card_url": f"{str(bob.http.base_url).rstrip('/')}/a2a/{bob.account.org_id}/{agent['slug']}", "slug": "victim-remote",
        "api_key": bob.account.key})
    assert remote.status_code == 201, remote.text
    return {"agent": {"id": agent["slug"]}, "agent_thing": {"id": agent["id"]}, "prompt": prompt.json(),
            "conversation": conversation.json(), "external": {"id": external}, "run": {"id": chat.json()["run_id"]},
            "external_agent": {"id": "victim-remote"}, "external_agent_thing": {"id": remote.json()["id"]},
            "victim_org_slug": {"id": org.json()["slug"]}}


async def _agents_of(bob: Caller, victim: dict[str, Any]) -> dict[str, Any]:
    conversation = victim["conversation"]["id"]
    return {
        "agent": (await bob.call("GET", f"/v1/agents/{victim['agent']['id']}")).json(),
        "prompt": (await bob.call("GET", f"/v1/prompts/{victim['prompt']['id']}")).json(),
        "conversation": (await bob.call("GET", f"/v1/conversations/{conversation}")).json(),
        "messages": (await bob.call("GET", f"/v1/conversations/{conversation}/messages")).json(),
        "runs": (await bob.call("GET", "/v1/runs")).json(),
        "external_agent": (await bob.call("GET", f"/v1/external-agents/{victim['external_agent']['id']}")).json(),
    }


async def _knowledge_of(bob: Caller, victim: dict[str, Any]) -> dict[str, Any]:
    thing = victim["thing"]["id"]
    return {
        "label": (await bob.call("GET", f"/v1/labels/{VICTIM_LABEL}")).json(),
        "labels": (await bob.call("GET", "/v1/labels")).json(),
        "item": (await bob.call("GET", f"/v1/knowledge/items/{victim['item']['id']}")).json(),
        "thing_labels": (await bob.call("GET", f"/v1/things/{thing}/labels")).json(),
        "thing_knowledge": (await bob.call("GET", f"/v1/things/{thing}/knowledge")).json(),
    }


def _body(response: httpx.Response) -> Any:
    """The JSON body; of an event stream, its events (each `data:` line's JSON)."""
    if response.headers["content-type"].startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return response.json()


def _ids_in(body: Any) -> list[str]:
    if isinstance(body, dict):
        return [v for k, v in body.items() if k.endswith("id") and isinstance(v, str)] + \
            [i for v in body.values() for i in _ids_in(v)]
    if isinstance(body, list):
        return [i for v in body for i in _ids_in(v)]
    return []


SELF_ONLY = {
    ("GET", "/v1/me"): "the caller's own person",
    ("GET", "/v1/whoami"): "the caller's own key: it takes no id",
    ("POST", "/v1/me/email-verification"): "the caller's own address",
    ("POST", "/v1/me/two-factor"): "the caller's own second factor",
    ("POST", "/v1/me/two-factor/confirm"): "the caller's own second factor",
    ("POST", "/v1/me/two-factor/disable"): "the caller's own second factor",
    ("POST", "/v1/orgs"): "creates a new org; it names no existing one",
    ("POST", "/v1/signup"): "no key: a new person and org",
    ("GET", "/v1/public/orgs/{ref}"): "no key: an org's public facts (id, slug, name), what its agents' cards name",
    ("POST", "/v1/email-verification/confirm"): "no key: the mailed token is the credential",
    ("POST", "/v1/invites/accept"): "the invite token is the credential",
    ("GET", "/v1/status"): "the services' health reports: no org's data, no id",
    ("GET", "/healthz"): "no key, no id: the process answers",
    ("GET", "/readyz"): "no key, no id: the broker and tenancy answer",
    ("GET", "/metrics"): "no key, no id: counters per route template, never an org or a path",
    ("POST", "/v1/x402/chain/fund"): "mints test tokens to an address on the local chain: no org's data",
    ("GET", "/v1/x402/chain/balances/{address}"): "an address's token balance is public on any chain",
    ("POST", "/v1/x402/wallet"): "the caller's own org's wallet: it takes no id",
    ("GET", "/v1/x402/wallet"): "the caller's own org's wallet: it takes no id",
    ("GET", "/v1/ap2/jwks"): "the caller's own org's keys: it takes no id",
    **{(method, "/mcp"): "the MCP tunnel: each tool is a bus request of a route attacked above, as the caller; "
       "tests/gateway/test_mcp.py sends org B's thing id through the official MCP client" for method in
       ("GET", "POST", "DELETE")},
}
"""Routes that reach no other org's ids by construction; every other route needs a row in ATTACKS."""


def test_every_route_is_attacked_or_acts_only_on_the_caller(settings: Any) -> None:
    """A new route joins the suite by a row in ATTACKS (or, if it can name no other org's data, in SELF_ONLY)."""
    attacked = {(a.method, a.path.split("?")[0]) for a in ATTACKS}
    missing = []
    for method, path in app_routes(None, settings):  # type: ignore[arg-type]
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        covered = any(m == method.upper() and pattern.match(p) for m, p in attacked)
        if not covered and (method.upper(), path) not in SELF_ONLY:
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"routes missing from the cross-tenant ATTACKS table: {missing}"
