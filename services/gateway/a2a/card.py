"""An agent's A2A card (public): every field A2A v1.0 requires, from what the agents service says of the agent.

Name, description and version (the deployed config's) and skills (its tools and prompts) come from the
agents service (`a2a.card`: only an active, deployed agent has a card, else 404); this gateway adds the
interfaces (JSON-RPC and HTTP+JSON at the agent's base URL, protocol 1.0), the capabilities (streaming,
push notifications), the security schemes it enforces (an API key as `Authorization: Bearer` or
`X-API-Key`) and the platform as provider; a merchant agent's card declares the AP2 extension
(ap2_extension.py). Served with the SDK's serializer (`agent_card_to_dict`, which adds the 0.3 fields older
clients read) and an ETag.
"""

import hashlib
import json

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    APIKeySecurityScheme,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.gateway.a2a.ap2_extension import declare
from services.gateway.a2a.auth import org_of
from services.gateway.problems import one_error_response
from shared.contracts.a2a import A2A_CARD, A2aAgentFacts
from shared.kernel.envelope import Protocol
from shared.kernel.errors import OneError

PROVIDER = "ONE on a bus"
MODES = ["text/plain", "application/json"]


def base_url(request: Request, org_slug: str) -> str:
    """The agent's A2A base URL, naming its org by slug (whether this request named it so or by id)."""
    return f"{str(request.base_url).rstrip('/')}/a2a/{org_slug}/{request.path_params['agent']}"


def build_card(facts: A2aAgentFacts, base: str, platform: str) -> AgentCard:
    return AgentCard(
        name=facts.name, description=facts.description, version=facts.version,
        supported_interfaces=[
            AgentInterface(url=base, protocol_binding=TransportProtocol.JSONRPC, protocol_version=PROTOCOL_VERSION_1_0),
            AgentInterface(url=base, protocol_binding=TransportProtocol.HTTP_JSON,
                           protocol_version=PROTOCOL_VERSION_1_0),
        ],
        provider=AgentProvider(organization=PROVIDER, url=platform),
        documentation_url=f"{platform}/docs",
        capabilities=AgentCapabilities(streaming=True, push_notifications=True, extended_agent_card=False),
        security_schemes={
            "bearer": SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(
                scheme="Bearer", bearer_format="API key",
                description="An API key of the agent's organization (or a customer/partner key allowed `a2a`).")),
            "apiKey": SecurityScheme(api_key_security_scheme=APIKeySecurityScheme(
                location="header", name="X-API-Key", description="The same API key, as a header of its own.")),
        },
        security_requirements=[SecurityRequirement(schemes={"bearer": StringList()}),
                               SecurityRequirement(schemes={"apiKey": StringList()})],
        default_input_modes=MODES, default_output_modes=MODES,
        skills=[AgentSkill(id=s.id, name=s.name, description=s.description, tags=s.tags,
                           input_modes=MODES, output_modes=MODES) for s in facts.skills],
    )


async def agent_card(request: Request) -> Response:
    try:
        org = await org_of(request)
        facts: A2aAgentFacts = await request.app.state.bus.request(
            A2A_CARD, {"org_id": str(org.id), "agent": request.path_params["agent"]}, protocol=Protocol.A2A)
    except OneError as error:
        return one_error_response(request, error)
    platform = str(request.base_url).rstrip("/")
    body = agent_card_to_dict(declare(build_card(facts, base_url(request, org.slug), platform), facts, platform))
    etag = f'W/"{hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(body, headers={"ETag": etag, "Cache-Control": "public, max-age=60"})
