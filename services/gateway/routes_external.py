"""External A2A agents' REST routes (served by the agents service): add, list, read, re-credential, refresh, remove.

Each route is one bus request on `shared.contracts.agents.external`'s models; an external agent is named by its
slug in the path (another org's slug is not found, as an unknown one is). The credential a caller gives is
passed on to the service as given (never echoed: replies say `has_credentials` and `credentials_hint`).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from services.gateway.shapes import derived
from shared.contracts.agents.external import (
    EXTERNAL_ADD,
    EXTERNAL_ARCHIVE,
    EXTERNAL_CREDENTIALS,
    EXTERNAL_GET,
    EXTERNAL_LIST,
    EXTERNAL_REFRESH,
    ExternalAgent,
    ExternalAgentAdd,
    ExternalAgentCredentials,
    ExternalAgentPage,
    ExternalAgentQuery,
)

CredentialsBody = derived(ExternalAgentCredentials, "ExternalAgentCredentialsBody", drop=("slug", "id"))

router = APIRouter(prefix="/v1", tags=["agents"])


def _revealed(body: Any) -> dict[str, Any]:
    """The body as the service must get it: the secret itself, not pydantic's mask of it."""
    data = body.model_dump(mode="json", exclude_unset=True)
    if getattr(body, "api_key", None) is not None:
        data["api_key"] = body.api_key.get_secret_value()
    return data


@router.post("/external-agents", status_code=201, responses=WRITE)
async def add_external_agent(body: ExternalAgentAdd, caller: Caller, bus: Bus) -> ExternalAgent:
    return await bus.request(EXTERNAL_ADD, _revealed(body), caller, timeout=30)


@router.get("/external-agents", responses=READ)
async def list_external_agents(query: Annotated[ExternalAgentQuery, Query()], caller: Caller,
                               bus: Bus) -> ExternalAgentPage:
    return await bus.request(EXTERNAL_LIST, query, caller)


@router.get("/external-agents/{slug}", responses=READ)
async def get_external_agent(slug: str, caller: Caller, bus: Bus) -> ExternalAgent:
    return await bus.request(EXTERNAL_GET, {"slug": slug}, caller)


@router.put("/external-agents/{slug}/credentials", responses=WRITE)
async def set_external_credentials(slug: str, body: CredentialsBody, caller: Caller,  # type: ignore[valid-type]
                                   bus: Bus) -> ExternalAgent:
    return await bus.request(EXTERNAL_CREDENTIALS, {"slug": slug, **_revealed(body)}, caller)


@router.post("/external-agents/{slug}/refresh", responses=WRITE)
async def refresh_external_agent(slug: str, caller: Caller, bus: Bus) -> ExternalAgent:
    return await bus.request(EXTERNAL_REFRESH, {"slug": slug}, caller, timeout=30)


@router.post("/external-agents/{slug}/archive", responses=WRITE)
async def archive_external_agent(slug: str, caller: Caller, bus: Bus) -> ExternalAgent:
    return await bus.request(EXTERNAL_ARCHIVE, {"slug": slug}, caller)
