"""Packs over HTTP, with an org owner's API key: `/v1/packs` (what `one packs ...` sends over `ONE_URL`).

A pack installs thing types' property schemas, roles with policies, field masks, prompts and agents into
the key's org; installing again creates nothing twice, and uninstalling says what stayed and why. Each
route is one bus request to tenancy, which orchestrates the other services as the caller.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from shared.contracts.tenancy.messages import OneTimeCode
from shared.contracts.tenancy.packs import (
    PACK_INSTALL,
    PACK_LIST,
    PACK_UNINSTALL,
    PackInstall,
    PackInstalled,
    Packs,
    PackUninstalled,
)

router = APIRouter(prefix="/v1/packs", tags=["packs"])
PackPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,39}$")]
PACK_TIMEOUT = 60.0
"""Seconds an install or uninstall may take: tenancy makes a dozen requests of the graph and the agents service."""


@router.get("", responses=READ)
async def list_packs(caller: Caller, bus: Bus) -> Packs:
    """The packs installed in the org, and those the platform ships."""
    return await bus.request(PACK_LIST, {}, caller)


@router.post("", responses=WRITE)
async def install_pack(body: PackInstall, caller: Caller, bus: Bus) -> PackInstalled:
    """Install a shipped pack (`name`) or a document of the org's own; idempotent (200 either way)."""
    return await bus.request(PACK_INSTALL, body, caller, timeout=PACK_TIMEOUT)


@router.delete("/{name}", responses=WRITE)
async def uninstall_pack(
    name: PackPath, caller: Caller, bus: Bus, otp: Annotated[OneTimeCode | None, Query()] = None
) -> PackUninstalled:
    """Remove what nothing uses; the reply lists what stayed (a role a member holds, a type with live things)."""
    return await bus.request(PACK_UNINSTALL, {"name": name, "otp": otp}, caller, timeout=PACK_TIMEOUT)
