"""`GET /v1/whoami`: what the presented API key stands for (org, actor, role, scopes, key id).

The SDK's and the CLI's `whoami` over HTTP, and how a client learns its own org id (the tenancy
routes name it in their paths). One bus request: tenancy's verification of the same key the
`Caller` dependency verified, so the answer is tenancy's own `VerifiedKey`, never a copy.
"""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials

from services.gateway.auth import Caller, api_key_header, bearer
from services.gateway.routes_graph import READ, Bus
from shared.contracts.tenancy import VERIFY_KEY, VerifiedKey

router = APIRouter(prefix="/v1", tags=["people"])


@router.get("/whoami", responses=READ)
async def whoami(
    caller: Caller,
    bus: Bus,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> VerifiedKey:
    key = credentials.credentials if credentials is not None else api_key
    return await bus.request(VERIFY_KEY, {"key": (key or "").strip()})
