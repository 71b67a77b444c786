"""Which gateway route carries which bus message: the HTTP transport's one table.

Each row maps a message type to its method and path template, where the rest of the payload
goes (`query`, `body`, or `none`) and which path parameters carry a payload field of another
name (`{id}` of `/v1/things/{id}/labels` is the payload's `thing_id`). It mirrors the gateway's
routes without importing the gateway at run time; tests/sdk/test_routes.py rebuilds the same
facts from `create_app` and fails when a route changes and this table does not.
"""

import re
from dataclasses import dataclass, field
from typing import Literal

PARAMETER = re.compile(r"{(\w+)}")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    send: Literal["query", "body", "none"] = "none"
    renames: dict[str, str] = field(default_factory=dict)
    """Path parameter -> payload field, where the names differ."""
    empty_nulls: tuple[str, ...] = ()
    """Query fields whose null is meaningful: sent as `field=` (the gateway reads empty as null)."""
    clauses: tuple[str, ...] = ()
    """Query fields holding `PropertyFilter`s, sent as `path:op:value` strings."""
    stream: bool = False
    """Server-Sent Events, not one reply: followed by the transport's `stream`, never by `request`."""

    @property
    def path_fields(self) -> dict[str, str]:
        """Every path parameter -> the payload field it carries."""
        return {name: self.renames.get(name, name) for name in PARAMETER.findall(self.path)}


HTTP_ROUTES: dict[str, Route] = {
    "graph.thing.create": Route("POST", "/v1/things", "body"),
    "graph.thing.get": Route("GET", "/v1/things/{id}", "query"),
    "graph.thing.update": Route("PATCH", "/v1/things/{id}", "body"),
    "graph.thing.delete": Route("DELETE", "/v1/things/{id}"),
    "graph.thing.restore": Route("POST", "/v1/things/{id}/restore"),
    "graph.thing.create_batch": Route("POST", "/v1/things/batch", "body"),
    "graph.thing.archive": Route("POST", "/v1/things/{id}/archive"),
    "graph.neighbors": Route("GET", "/v1/things/{id}/neighbors", "query", renames={"id": "thing_id"}),
    "graph.thing.query": Route("GET", "/v1/things", "query", clauses=("where",)),
    "graph.connection.create": Route("POST", "/v1/connections", "body"),
    "graph.connection.query": Route("GET", "/v1/connections", "query"),
    "graph.connection.delete": Route("DELETE", "/v1/connections/{id}"),
    "graph.connection.update": Route("PATCH", "/v1/connections/{id}", "body"),
    "graph.connection.end": Route("POST", "/v1/connections/{id}/end", "body"),
    "tenancy.organization.create": Route("POST", "/v1/orgs", "body"),
    "tenancy.organization.list": Route("GET", "/v1/orgs", "query"),
    "tenancy.organization.get": Route("GET", "/v1/orgs/{org_id}"),
    "tenancy.organization.resolve_public": Route("GET", "/v1/public/orgs/{ref}"),
    "tenancy.organization.update": Route("PATCH", "/v1/orgs/{org_id}", "body"),
    "tenancy.signup": Route("POST", "/v1/signup", "body"),
    "tenancy.person.me": Route("GET", "/v1/me"),
    "tenancy.person.update": Route("PATCH", "/v1/me", "body"),
    "tenancy.email.verification.request": Route("POST", "/v1/me/email-verification"),
    "tenancy.email.verify": Route("POST", "/v1/email-verification/confirm", "body"),
    "tenancy.two_factor.enroll": Route("POST", "/v1/me/two-factor"),
    "tenancy.two_factor.confirm": Route("POST", "/v1/me/two-factor/confirm", "body"),
    "tenancy.two_factor.disable": Route("POST", "/v1/me/two-factor/disable", "body"),
    "tenancy.member.invite": Route("POST", "/v1/orgs/{org_id}/invites", "body"),
    "tenancy.member.accept": Route("POST", "/v1/invites/accept", "body"),
    "tenancy.member.list": Route("GET", "/v1/orgs/{org_id}/members"),
    "tenancy.member.change_role": Route("PATCH", "/v1/orgs/{org_id}/members/{person_id}", "body"),
    "tenancy.member.remove": Route("DELETE", "/v1/orgs/{org_id}/members/{person_id}", "body"),
    "tenancy.two_factor.reset": Route("DELETE", "/v1/orgs/{org_id}/members/{person_id}/two-factor", "body"),
    "tenancy.key.create": Route("POST", "/v1/keys", "body"),
    "tenancy.key.list": Route("GET", "/v1/keys", "query"),
    "tenancy.key.revoke": Route("DELETE", "/v1/keys/{key_id}"),
    "tenancy.role.list": Route("GET", "/v1/roles"),
    "tenancy.role.create": Route("POST", "/v1/roles", "body"),
    "tenancy.policy.add": Route("POST", "/v1/roles/{role}/policies", "body"),
    "tenancy.policy.remove": Route("DELETE", "/v1/policies/{policy_id}", "body"),
    "tenancy.quota.usage": Route("GET", "/v1/orgs/{org_id}/quotas"),
    "tenancy.quota.set_limit": Route("PUT", "/v1/orgs/{org_id}/quotas/{metric}", "body"),
    "tenancy.rate_limit.list": Route("GET", "/v1/rate-limits"),
    "tenancy.rate_limit.set": Route("PUT", "/v1/orgs/{org_id}/rate-limits", "body"),
    "event.append": Route("POST", "/v1/events", "body"),
    "event.append_batch": Route("POST", "/v1/events/batch", "body"),
    "event.query": Route("GET", "/v1/events", "query"),
    "eventlog.stats": Route("GET", "/v1/events/stats", "query"),
    "event.daily_counts": Route("GET", "/v1/events/daily-counts", "query"),
    "event.revenue": Route("GET", "/v1/events/revenue", "query", empty_nulls=("status",)),
    "event.dead_letters": Route("GET", "/v1/events/dead-letters", "query"),
    "event.tail": Route("GET", "/v1/events/stream", "query", stream=True),
    "event.history": Route("GET", "/v1/things/{id}/history", "query", renames={"id": "thing_id"}),
    "knowledge.label.ensure": Route("POST", "/v1/labels", "body"),
    "knowledge.label.list": Route("GET", "/v1/labels", "query"),
    "knowledge.label.alias": Route("POST", "/v1/labels/{name}/aliases", "body"),
    "knowledge.label.deprecate": Route("POST", "/v1/labels/{name}/deprecate"),
    "knowledge.label.get": Route("GET", "/v1/labels/{name}"),
    "knowledge.label.delete": Route("DELETE", "/v1/labels/{name}"),
    "knowledge.thing.label": Route("POST", "/v1/things/{id}/labels", "body", renames={"id": "thing_id"}),
    "knowledge.thing.unlabel": Route("DELETE", "/v1/things/{id}/labels", "query", renames={"id": "thing_id"}),
    "knowledge.thing.labels": Route("GET", "/v1/things/{id}/labels", renames={"id": "thing_id"}),
    "knowledge.link": Route("POST", "/v1/things/{id}/knowledge", "body", renames={"id": "thing_id"}),
    "knowledge.unlink": Route("DELETE", "/v1/things/{id}/knowledge/{knowledge_id}", "query", renames={"id": "thing_id"}),
    "knowledge.thing.knowledge": Route("GET", "/v1/things/{id}/knowledge", "query", renames={"id": "thing_id"}),
    "knowledge.ingest": Route("POST", "/v1/things/{id}/ingest", "body", renames={"id": "thing_id"}),
    "knowledge.ingest.status": Route("GET", "/v1/knowledge/ingest", "query"),
    "knowledge.things.by_labels": Route("GET", "/v1/knowledge/things", "query"),
    "knowledge.item.add": Route("POST", "/v1/knowledge/items", "body"),
    "knowledge.item.add_batch": Route("POST", "/v1/knowledge/items/batch", "body"),
    "knowledge.item.query": Route("GET", "/v1/knowledge/items", "query"),
    "knowledge.item.get": Route("GET", "/v1/knowledge/items/{id}", "query"),
    "knowledge.item.delete": Route("DELETE", "/v1/knowledge/items/{id}"),
    "knowledge.item.restore": Route("POST", "/v1/knowledge/items/{id}/restore"),
    "knowledge.search": Route("POST", "/v1/knowledge/search", "body"),
    "knowledge.search.hybrid": Route("POST", "/v1/knowledge/search/hybrid", "body"),
    "knowledge.gc": Route("POST", "/v1/knowledge/gc", "body"),
    "agents.jobs.enqueue": Route("POST", "/v1/jobs", "body"),
    "agents.jobs.list": Route("GET", "/v1/jobs", "query"),
    "agents.jobs.get": Route("GET", "/v1/jobs/{id}"),
    "agents.jobs.cancel": Route("POST", "/v1/jobs/{id}/cancel"),
    "agents.jobs.retry": Route("POST", "/v1/jobs/{id}/retry", "body"),
    "agents.external.add": Route("POST", "/v1/external-agents", "body"),
    "agents.external.list": Route("GET", "/v1/external-agents", "query"),
    "agents.external.get": Route("GET", "/v1/external-agents/{slug}"),
    "agents.external.credentials": Route("PUT", "/v1/external-agents/{slug}/credentials", "body"),
    "agents.external.refresh": Route("POST", "/v1/external-agents/{slug}/refresh"),
    "agents.external.archive": Route("POST", "/v1/external-agents/{slug}/archive"),
    "agents.agent.create": Route("POST", "/v1/agents", "body"),
    "agents.agent.list": Route("GET", "/v1/agents", "query"),
    "agents.agent.get": Route("GET", "/v1/agents/{slug}"),
    "agents.agent.update": Route("PATCH", "/v1/agents/{slug}", "body"),
    "agents.agent.configure": Route("PUT", "/v1/agents/{slug}/config", "body"),
    "agents.agent.versions": Route("GET", "/v1/agents/{slug}/versions", "query"),
    "agents.agent.deploy": Route("POST", "/v1/agents/{slug}/deploy"),
    "agents.agent.archive": Route("POST", "/v1/agents/{slug}/archive"),
    "agents.prompt.attach": Route("POST", "/v1/agents/{slug}/prompts", "body"),
    "agents.prompt.detach": Route("DELETE", "/v1/agents/{slug}/prompts/{prompt_id}"),
    "agents.chat": Route("POST", "/v1/agents/{slug}/chat", "body"),
    "agents.prompt.create": Route("POST", "/v1/prompts", "body"),
    "agents.prompt.list": Route("GET", "/v1/prompts", "query"),
    "agents.prompt.get": Route("GET", "/v1/prompts/{id}"),
    "agents.prompt.update": Route("PATCH", "/v1/prompts/{id}", "body"),
    "agents.prompt.archive": Route("POST", "/v1/prompts/{id}/archive"),
    "agents.prompt.render": Route("POST", "/v1/prompts/{id}/render", "body"),
    "agents.conversation.create": Route("POST", "/v1/conversations", "body"),
    "agents.conversation.list": Route("GET", "/v1/conversations", "query"),
    "agents.conversation.by_external_id": Route("GET", "/v1/conversations/external/{external_thread_id}"),
    "agents.conversation.get": Route("GET", "/v1/conversations/{id}"),
    "agents.conversation.update": Route("PATCH", "/v1/conversations/{id}", "body"),
    "agents.participant.add": Route("POST", "/v1/conversations/{id}/participants", "body",
                                    renames={"id": "conversation_id"}),
    "agents.participant.remove": Route("DELETE", "/v1/conversations/{id}/participants", "query",
                                       renames={"id": "conversation_id"}),
    "agents.message.list": Route("GET", "/v1/conversations/{id}/messages", "query", renames={"id": "conversation_id"}),
    "agents.message.add": Route("POST", "/v1/conversations/{id}/messages", "body", renames={"id": "conversation_id"}),
    "agents.history.search": Route("POST", "/v1/conversations/{id}/search", "body", renames={"id": "conversation_id"}),
    "agents.run.list": Route("GET", "/v1/runs", "query"),
    "agents.run.get": Route("GET", "/v1/runs/{id}"),
    "agents.run.steps": Route("GET", "/v1/runs/{id}/steps", "query", renames={"id": "run_id"}),
    "agents.execution.list": Route("GET", "/v1/executions", "query"),
    "agents.execution.stats": Route("GET", "/v1/executions/stats", "query"),
    "commerce.x402.prices.set": Route("PUT", "/v1/x402/prices", "body"),
    "commerce.x402.prices.list": Route("GET", "/v1/x402/prices", "query"),
    "commerce.x402.prices.delete": Route("DELETE", "/v1/x402/prices/{resource}"),
    "commerce.chain.fund": Route("POST", "/v1/x402/chain/fund", "body"),
    "commerce.chain.balance": Route("GET", "/v1/x402/chain/balances/{address}"),
    "commerce.wallet.create": Route("POST", "/v1/x402/wallet"),
    "commerce.wallet.get": Route("GET", "/v1/x402/wallet"),
    "commerce.wallet.budget.set": Route("PUT", "/v1/x402/budgets/{agent_id}", "body"),
    "commerce.wallet.budget.get": Route("GET", "/v1/x402/budgets/{agent_id}"),
    "ap2.jwks": Route("GET", "/v1/ap2/jwks"),
    "ap2.trust.add": Route("POST", "/v1/ap2/trust", "body"),
    "ap2.trust.list": Route("GET", "/v1/ap2/trust"),
    "ap2.checkout.create": Route("POST", "/v1/ap2/checkouts", "body"),
    "ap2.mandate.present": Route("POST", "/v1/ap2/checkouts/{checkout_id}/mandate", "body"),
    "ap2.receipt.get": Route("GET", "/v1/ap2/receipts/{receipt_id}", renames={"receipt_id": "id"}),
    "ap2.mandate.grant": Route("POST", "/v1/ap2/mandates", "body"),
    "ap2.mandate.revoke": Route("POST", "/v1/ap2/mandates/{mandate_id}/revoke", renames={"mandate_id": "id"}),
    "ap2.mandate.list": Route("GET", "/v1/ap2/mandates", "query"),
    "ap2.receipt.list": Route("GET", "/v1/ap2/receipts", "query"),
    "ap2.v1.accept": Route("POST", "/v1/ap2/v1/mandates", "body"),
    "commerce.discounts.create": Route("POST", "/v1/discounts", "body"),
    "commerce.discounts.list": Route("GET", "/v1/discounts", "query"),
    "commerce.discounts.get": Route("GET", "/v1/discounts/{code}"),
    "commerce.discounts.update": Route("PATCH", "/v1/discounts/{code}", "body"),
}
