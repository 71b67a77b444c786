"""The AP2 extension on a merchant agent's card: AP2 over A2A, declared as AP2's samples declare it.

An agent that sells over AP2 (the agents service gives its card the `ap2:merchant` skill) declares the
extension (`capabilities.extensions`, AP2's URI) with `params.roles = ["merchant"]` and `params.jwks_uri`:
the org's published keys (`/v1/ap2/{org id}/jwks.json`), with which a buyer checks the checkout JWTs and
receipts the agent returns. Not required: the agent still talks in plain A2A.
"""

from uuid import UUID

from a2a.types.a2a_pb2 import AgentCard, AgentExtension

from shared.contracts.a2a import A2aAgentFacts
from shared.contracts.agents.ap2 import AP2_EXTENSION_URI, AP2_MERCHANT_SKILL


def jwks_uri(platform: str, org_id: UUID) -> str:
    return f"{platform}/v1/ap2/{org_id}/jwks.json"


def declare(card: AgentCard, facts: A2aAgentFacts, platform: str) -> AgentCard:
    """The card with the AP2 extension declared when the agent sells over AP2."""
    if any(skill.id == AP2_MERCHANT_SKILL for skill in facts.skills):
        card.capabilities.extensions.append(AgentExtension(
            uri=AP2_EXTENSION_URI, required=False,
            description="Agent Payments Protocol (AP2 v2): checkout JWTs, SD-JWT payment mandates and signed "
                        "receipts as data parts.",
            params={"roles": ["merchant"], "jwks_uri": jwks_uri(platform, facts.org_id)}))
    return card
